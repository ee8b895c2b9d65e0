"""Client IP and user agent: the only place that reads them from a request."""

from __future__ import annotations

from django.http import HttpRequest

MAX_USER_AGENT = 512


def client_ip(request: HttpRequest) -> str:
    """Return the client's IP address.

    The socket address (``REMOTE_ADDR``); trusted-proxy handling is added with the network-access
    capability, and it will live here too so that one function answers everywhere.
    """
    return request.META.get("REMOTE_ADDR") or "0.0.0.0"  # noqa: S104  (placeholder for a missing address)


def ratelimit_ip(group: str, request: HttpRequest) -> str:
    """Key function for django-ratelimit: the client IP from :func:`client_ip`."""
    return client_ip(request)


def user_agent(request: HttpRequest) -> str:
    """Return the User-Agent header, cut to a storable length."""
    return (request.META.get("HTTP_USER_AGENT") or "")[:MAX_USER_AGENT]
