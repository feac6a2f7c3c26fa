from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class UsernameOrEmailBackend(ModelBackend):
    """Log in with either the username or the e-mail address, case-insensitively for e-mail."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        user_model = get_user_model()
        if "@" in username:
            matches = list(user_model._default_manager.filter(email__iexact=username)[:2])
            # Two accounts sharing an address (possible for admin-made users) would make the
            # login ambiguous, so neither gets in by e-mail.
            if len(matches) != 1:
                user_model().set_password(password)  # same cost as a real check: no timing oracle
                return None
            user = matches[0]
        else:
            try:
                user = user_model._default_manager.get_by_natural_key(username)
            except user_model.DoesNotExist:
                user_model().set_password(password)
                return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
