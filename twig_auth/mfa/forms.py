"""Forms of the two-factor pages. They shape input only (present, short, the right characters); whether a code
is right is decided by the services, which also count wrong ones."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from twig_auth.mfa import totp

CODE_ATTRS = {"autocomplete": "one-time-code", "inputmode": "numeric", "autocapitalize": "off", "spellcheck": "false",
              "autocorrect": "off"}
SIX_DIGITS = re.compile(r"^[0-9]{6}$")
# Authenticator and SMS codes are 6 digits, recovery codes look like ``k7pm3-xq9wd``; people add spaces.
ANY_CODE = re.compile(r"^[0-9A-Za-z \-]{1,24}$")
ENTER_SIX = "Enter the 6-digit code, digits only."


def _compact(value: str) -> str:
    return "".join(value.split()).replace("-", "")


class SixDigitCodeField(forms.CharField):
    """A 6-digit code from an authenticator app or a text message (spaces ignored)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "6-digit code")
        kwargs.setdefault("error_messages", {"required": "Enter the 6-digit code.", "max_length": ENTER_SIX})
        attrs = {**CODE_ATTRS, "maxlength": "7", "pattern": "[0-9 ]*", "class": "code-input"}
        super().__init__(max_length=16, widget=forms.TextInput(attrs=attrs), **kwargs)

    def clean(self, value: Any) -> str:
        code = _compact(super().clean(value))
        if not SIX_DIGITS.match(code):
            raise forms.ValidationError(ENTER_SIX, code="invalid")
        return code


class SecondFactorCodeField(forms.CharField):
    """Any second factor: an authenticator or SMS code, or a recovery code."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Verification code")
        kwargs.setdefault("error_messages", {
            "required": "Enter the code from your authenticator app or text message, or a recovery code.",
            "max_length": "That is longer than any code. Enter the 6-digit code or a recovery code.",
        })
        attrs = {**CODE_ATTRS, "class": "code-input", "maxlength": "24"}
        super().__init__(max_length=24, widget=forms.TextInput(attrs=attrs), **kwargs)

    def clean(self, value: Any) -> str:
        code = super().clean(value)
        if not ANY_CODE.match(code):
            raise forms.ValidationError("A code has only digits, or letters, digits and a hyphen for a recovery code.",
                                        code="invalid")
        return code


class DeviceIdField(forms.CharField):
    """The id of the device being set up, echoed back by the page (the services check it is the user's)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=18, widget=forms.HiddenInput, error_messages={
            "required": "This setup has expired. Start again.", "max_length": "This setup has expired. Start again."},
            **kwargs)

    def clean(self, value: Any) -> str:
        text = super().clean(value)
        if not (text.isascii() and text.isdigit()):
            raise forms.ValidationError("This setup has expired. Start again.", code="invalid")
        return text


class MfaForm(forms.Form):
    def add_error(self, field: str | None, error: Any) -> None:
        """Also work on an unbound form (a throttled or failed "send a code" shows its error on a fresh form)."""
        if not self.is_bound and not hasattr(self, "cleaned_data"):
            self.full_clean()
            self.cleaned_data = {}
        super().add_error(field, error)

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Attach a service's field errors to the matching fields (unknown fields become form errors)."""
        for field, messages in errors.items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)


class TotpConfirmForm(MfaForm):
    device = DeviceIdField()
    code = SixDigitCodeField(label="6-digit code from the app",
                             help_text="The app shows a new code every 30 seconds. Enter the one you see now.")
    name = forms.CharField(max_length=64, required=False, label="Name (optional)", initial=totp.DEFAULT_NAME,
                           help_text="Helps you tell your devices apart, e.g. “Work phone”.",
                           widget=forms.TextInput(attrs={"autocomplete": "off"}),
                           error_messages={"max_length": "Keep the name under 64 characters."})

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data.get("name", "").split())
        if any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError("Use letters, digits and spaces.", code="invalid")
        return name or totp.DEFAULT_NAME


class PhoneForm(MfaForm):
    number = forms.CharField(
        max_length=32, label="Mobile phone number",
        help_text="Start with + and the country code, e.g. +1 415 555 2671. Texts may cost what your carrier charges.",
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
        error_messages={"required": "Enter your mobile phone number.",
                        "max_length": "That is too long for a phone number."})


class SmsConfirmForm(MfaForm):
    device = DeviceIdField()
    code = SixDigitCodeField(label="6-digit code from the text message")


class ResendForm(MfaForm):
    device = DeviceIdField()


class CodeForm(MfaForm):
    """The one field of the sign-in second step and of the step-up page."""

    code = SecondFactorCodeField(
        help_text="The 6-digit code from your authenticator app or text message. Lost your phone? "
                  "Enter one of your recovery codes instead.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].widget.attrs["autofocus"] = True
