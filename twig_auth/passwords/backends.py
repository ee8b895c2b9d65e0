"""Django authentication backend: email + password through the lockout-guarded workflow."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.views.decorators.debug import sensitive_variables

from twig_auth.core.context import RequestContext
from twig_auth.exceptions import AccountLocked, InvalidCredentials
from twig_auth.passwords.services import authenticate_password


class EmailBackend(ModelBackend):
    """``authenticate(request, email=..., password=...)`` (``username=`` is read as the email).

    Every password check anywhere in Django (admin, ``authenticate()``) goes through lockout. A locked
    account raises Django's ``PermissionDenied`` so no later backend tries the password.
    """

    @sensitive_variables("password")
    def authenticate(self, request: Any, username: str | None = None, password: str | None = None,
                     email: str | None = None, **kwargs: Any) -> Any:
        email = email or username
        if not email or password is None:
            return None
        context = RequestContext.from_request(request) if request is not None else RequestContext.system()
        try:
            user = authenticate_password(email=email, password=password, context=context)
        except AccountLocked as exc:
            raise DjangoPermissionDenied(exc.detail) from None
        except InvalidCredentials:
            return None
        return user if self.user_can_authenticate(user) else None
