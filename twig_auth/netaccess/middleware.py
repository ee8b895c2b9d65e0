"""``IpAllowlistMiddleware``: a signed-in member whose active org has an IP allowlist that does not contain the
client IP gets a 403 page on every page, the Django admin included. Place it after
``AuthenticationMiddleware`` and ``MfaEnforcementMiddleware`` (system check ``twig_auth.E007``).

DRF views are left to the DRF authentication classes, which answer 403 ``ip_not_allowed`` in JSON for every
credential. Sign-in, sign-out and the org switch stay reachable, so a blocked member can leave or work in
another org: the URL names in :data:`EXEMPT_VIEWS`, and any view marked with :func:`ip_allowlist_exempt`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from twig_auth.core.http import client_ip
from twig_auth.exceptions import IpNotAllowed
from twig_auth.netaccess import enforce
from twig_auth.orgs.active import current_membership, memberships_of

V = TypeVar("V", bound=Callable[..., Any])

EXEMPT_VIEWS = frozenset({"twig_auth:login", "twig_auth:logout", "twig_auth:choose_org",
                          "admin:login", "admin:logout"})
TEMPLATE = "twig_auth/netaccess/blocked.html"


def ip_allowlist_exempt(view: V) -> V:
    """Mark a view that members outside their org's IP allowlist may still open."""
    view.twig_ip_allowlist_exempt = True  # type: ignore[attr-defined]
    return view


def _is_api_view(view_func: Any) -> bool:
    cls = getattr(view_func, "cls", None)
    return cls is not None and hasattr(cls, "authentication_classes")


class IpAllowlistMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        user = getattr(request, "user", None)
        if not getattr(user, "is_authenticated", False):
            return None
        if getattr(view_func, "twig_ip_allowlist_exempt", False) or _is_api_view(view_func):
            return None
        match = getattr(request, "resolver_match", None)
        if match is not None and match.view_name in EXEMPT_VIEWS:
            return None
        membership = current_membership(request)
        if membership is None:
            return None
        try:
            enforce.check(request, org_id=membership.org_id, credential="session", user_id=user.pk)
        except IpNotAllowed:
            return render(request, TEMPLATE, {
                "org": membership.org, "ip": client_ip(request),
                "can_switch": len(memberships_of(user)) > 1,
            }, status=403)
        return None
