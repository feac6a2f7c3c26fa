from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "whalewatch-demo"  # noqa: S105 - a published login for the offline demo only


class Command(BaseCommand):
    help = "Create (or reset) the demo login used by `make demo`, and print it."

    def handle(self, *args, **options):
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": "demo@example.org"}
        )
        user.set_password(DEMO_PASSWORD)
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(
            f"{verb} the demo login: username {DEMO_USERNAME!r}, password {DEMO_PASSWORD!r}"
        )
