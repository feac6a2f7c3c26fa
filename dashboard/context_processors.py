from django.conf import settings


def site(request):
    return {"site_url": settings.SITE_URL, "signup_open": settings.WHALE_SIGNUP_OPEN}
