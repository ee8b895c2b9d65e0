"""Count API-key requests after the response is known (endpoint = the URL pattern, status)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from twig_auth.apikeys.usage import record_use
from twig_auth.core.http import client_ip


class ApiKeyUsageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        principal = getattr(request, "twig_api_key", None)
        if principal is not None:
            match = request.resolver_match
            endpoint = f"{request.method} /{match.route}" if match is not None else f"{request.method} {request.path}"
            record_use(principal, endpoint, response.status_code, client_ip(request))
        return response
