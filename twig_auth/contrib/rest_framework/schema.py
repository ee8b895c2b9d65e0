"""drf-spectacular extensions describing twig_auth's authentication classes in the OpenAPI schema.

Import this module once (for example from your API's ``urls.py``) so drf-spectacular registers them.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TwigSessionScheme(SessionScheme):
    """twig_auth's session authentication (a subclass, which drf-spectacular does not match itself)."""

    target_class = "twig_auth.contrib.rest_framework.authentication.SessionAuthentication"
    priority = 0


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer twigsk_live_…``."""

    target_class = "twig_auth.contrib.rest_framework.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "twigsk_live_… / twigsk_test_… API key",
                "description": "An API key from Settings → API Keys; scopes read, write, execute, admin."}


class AccessTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <access token>`` from ``POST /api/auth/token``."""

    target_class = "twig_auth.contrib.rest_framework.authentication.JwtAuthentication"
    name = "accessToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A short-lived access token from POST /api/auth/token (renew it with "
                               "POST /api/auth/refresh)."}
