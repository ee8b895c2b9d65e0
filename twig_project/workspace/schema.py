"""OpenAPI schema helpers for drf-spectacular."""

from __future__ import annotations

from drf_spectacular.authentication import SessionScheme


class TwigSessionScheme(SessionScheme):
    """Describe twig_auth's session authentication (a subclass, which drf-spectacular does not match itself)."""

    target_class = "twig_auth.contrib.rest_framework.authentication.SessionAuthentication"
    priority = 0
