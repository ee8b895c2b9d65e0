"""DRF authentication classes."""

from __future__ import annotations

from rest_framework import authentication
from rest_framework.request import Request


class SessionAuthentication(authentication.SessionAuthentication):
    """Django-session authentication whose failures answer 401 with ``WWW-Authenticate: Bearer``.

    DRF answers 403 to unauthenticated requests when the first authenticator names no scheme; the
    contract wants 401 ``not_authenticated``, and Bearer is how API clients authenticate.
    """

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
