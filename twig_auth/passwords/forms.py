"""Forms of the password pages. Field errors are written for people, not for developers."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.views.decorators.debug import sensitive_variables

from twig_auth.conf import app_settings
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import AccountLocked, InvalidCredentials
from twig_auth.passwords.services import authenticate_password


class LoginForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={
        "autocomplete": "email", "autofocus": True, "inputmode": "email"}),
        error_messages={"required": "Enter your email address.", "invalid": "Enter a valid email address."})
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
                               error_messages={"required": "Enter your password."})

    def __init__(self, request: Any, *args: Any, **kwargs: Any) -> None:
        self.request = request
        self.user: Any = None
        self.retry_after = 0
        super().__init__(*args, **kwargs)
        self.fields["password"].max_length = app_settings.PASSWORD_MAX_LENGTH

    @sensitive_variables("password")
    def clean(self) -> dict[str, Any]:
        data = super().clean()
        email, password = data.get("email"), data.get("password")
        if email and password:
            try:
                self.user = authenticate_password(email=email, password=password,
                                                  context=RequestContext.from_request(self.request))
            except AccountLocked as exc:
                self.retry_after = exc.retry_after
                raise forms.ValidationError(exc.detail, code="account_locked") from None
            except InvalidCredentials as exc:
                raise forms.ValidationError(exc.detail, code="invalid_credentials") from None
        return data


class RulesOnNewPasswordMixin:
    """Show broken password rules under "New password", where the person typed it, not under the repeat."""

    def validate_password_for_user(self, user: Any, password_field_name: str = "new_password1") -> None:  # noqa: S107
        super().validate_password_for_user(user, password_field_name="new_password1")  # type: ignore[misc]


class PasswordChangeForm(RulesOnNewPasswordMixin, auth_forms.PasswordChangeForm):
    error_messages = {**auth_forms.PasswordChangeForm.error_messages,
                      "password_incorrect": "Your current password is not correct."}


class PasswordResetForm(auth_forms.PasswordResetForm):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}),
                             error_messages={"required": "Enter your email address.",
                                             "invalid": "Enter a valid email address."})


class SetPasswordForm(RulesOnNewPasswordMixin, auth_forms.SetPasswordForm):
    pass
