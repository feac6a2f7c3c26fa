from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from dashboard.models import Profile

User = get_user_model()


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="Alerts and password resets go here.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this e-mail address already exists.")
        return email


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

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        taken = User.objects.filter(email__iexact=email).exclude(pk=self.user.pk).exists()
        if taken:
            raise forms.ValidationError("Another account uses this e-mail address.")
        return email

    def save(self):
        self.user.email = self.cleaned_data["email"]
        self.user.save(update_fields=["email"])
        profile, _ = Profile.objects.get_or_create(user=self.user)
        profile.time_zone = self.cleaned_data["time_zone"]
        profile.display_currency = self.cleaned_data["display_currency"] or "USD"
        profile.save(update_fields=["time_zone", "display_currency"])
