"""The add / replace form of Settings → External API keys. It shapes input; :mod:`.validation` decides.

The key field is a password input that is never rendered with a value: after an error, and on the page that
asks for a second factor, the key has to be pasted again rather than travel back to the browser.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.views.decorators.debug import sensitive_variables

from twig_auth.exceptions import InvalidInput
from twig_auth.providerkeys import validation
from twig_auth.providerkeys.models import Provider

ENDPOINT_HELP = ("Custom provider only: the base URL of an OpenAI-compatible API, up to /v1 (Twig adds "
                 "/chat/completions), e.g. https://llm.example.com/v1. https is required except for localhost.")


class ExternalKeyForm(forms.Form):
    provider = forms.CharField(label="Provider", required=False, widget=forms.Select(choices=Provider.choices))
    secret = forms.CharField(
        label="API key", required=False, strip=False,
        help_text="Stored encrypted; shown only as its first and last characters (e.g. sk-…abcd).",
        widget=forms.PasswordInput(render_value=False, attrs={
            "autocomplete": "off", "spellcheck": "false", "autocapitalize": "off", "maxlength": 1000}))
    endpoint_url = forms.CharField(
        label="Endpoint URL (Custom only)", required=False, strip=True, help_text=ENDPOINT_HELP,
        widget=forms.URLInput(attrs={"spellcheck": "false", "autocomplete": "off",
                                     "placeholder": "https://llm.example.com/v1"}))

    def __init__(self, *args: Any, provider: str | None = None, **kwargs: Any) -> None:
        """``provider``: the provider of the key being replaced (no provider select is shown then)."""
        super().__init__(*args, **kwargs)
        self.fixed_provider = provider
        if provider is not None:
            del self.fields["provider"]
            if provider != validation.CUSTOM:
                del self.fields["endpoint_url"]
            else:
                self.fields["endpoint_url"].label = "Endpoint URL"

    @sensitive_variables("secret")
    def clean(self) -> dict[str, Any]:
        data = super().clean()
        provider = self.fixed_provider or data.get("provider")
        try:
            data["provider"], data["secret"], data["endpoint_url"] = validation.clean(
                provider=provider, secret=data.get("secret"), endpoint_url=data.get("endpoint_url", ""))
        except InvalidInput as exc:
            self.add_service_errors(exc.errors)
        return data

    @property
    def chosen_provider(self) -> str:
        """The provider the form is about: fixed, posted, or initial ("" when none)."""
        if self.fixed_provider:
            return self.fixed_provider
        value = self.data.get("provider") if self.is_bound else self.initial.get("provider")
        return value if value in validation.PROVIDERS else ""

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Attach a service's field errors to the matching fields (unknown fields become form errors)."""
        for name, messages in errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)

    def focus_first_error(self) -> None:
        for name, field in self.fields.items():
            if name in self.errors:
                field.widget.attrs["autofocus"] = True
                return
