"""The pages' forms (Django forms: validated here, CSRF-protected by the middleware)."""

from django import forms


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=64,
        strip=True,
        help_text="What the token is for, e.g. my-bot: to recognise it in the list.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "my-bot"}),
    )
