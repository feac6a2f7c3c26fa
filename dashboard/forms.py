from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from dashboard.models import Profile

User = get_user_model()


class SignUpForm(UserCreationForm):
    email = forms.EmailField(
        required=True,
        help_text="Alerts and password resets go here, once you confirm it by the link we send.",
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_email(self):
        # A taken address is not an error here: the form must answer the same either way
        # (dashboard.views.signup mails the owner instead).
        return self.cleaned_data["email"].strip()

    def existing_address(self) -> str | None:
        """The address as the existing account spells it, when the one given is taken."""
        found = User.objects.filter(email__iexact=self.cleaned_data["email"]).first()
        return found.email if found is not None else None


class AccountSettingsForm(forms.Form):
    email = forms.EmailField()
    time_zone = forms.ChoiceField(
        choices=Profile._meta.get_field("time_zone").choices,
        help_text="Used for alert quiet hours and the times shown to you.",
    )
    display_currency = forms.ChoiceField(
        choices=Profile._meta.get_field("display_currency").choices,
        required=False,
        help_text="Fiat values of whales are shown to you in this currency.",
    )
    current_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Needed to change the e-mail address.",
    )

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        taken = User.objects.filter(email__iexact=email).exclude(pk=self.user.pk).exists()
        if taken:
            raise forms.ValidationError("Another account uses this e-mail address.")
        return email

    def email_changes(self) -> bool:
        new = self.cleaned_data.get("email") or ""
        return new.casefold() != (self.user.email or "").casefold()

    def clean(self):
        cleaned = super().clean()
        # A hijacked session must not be enough to move the account to another address.
        if self.email_changes() and not self.user.check_password(
            cleaned.get("current_password") or ""
        ):
            self.add_error("current_password", "Enter your current password to change the e-mail.")
        return cleaned

    def save(self) -> str | None:
        """Saves; the previous address when the e-mail changed (it is no longer confirmed)."""
        old = self.user.email if self.email_changes() else None
        profile, _ = Profile.objects.get_or_create(user=self.user)
        if old is not None:
            self.user.email = self.cleaned_data["email"]
            self.user.save(update_fields=["email"])
            profile.email_confirmed = False
        profile.time_zone = self.cleaned_data["time_zone"]
        profile.display_currency = self.cleaned_data["display_currency"] or "USD"
        profile.save(update_fields=["time_zone", "display_currency", "email_confirmed"])
        return old
