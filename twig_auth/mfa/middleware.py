"""``MfaEnforcementMiddleware``: after the grace period, a member who must use MFA and has no device is sent
to enrollment on every page, the Django admin included. Place it after ``AuthenticationMiddleware``.

DRF views are left to the DRF authentication classes, which answer 403 ``mfa_enrollment_required`` for
every credential (session, access token, API key). Views marked with :func:`mfa_exempt` (login, logout,
enrollment, org switch) always pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from twig_auth.exceptions import MfaEnrollmentRequired
from twig_auth.mfa import enforcement
from twig_auth.orgs.active import current_membership

V = TypeVar("V", bound=Callable[..., Any])



def mfa_exempt(view: V) -> V:
    """Mark a view that members blocked by the MFA policy may still open."""
    view.twig_mfa_exempt = True  # type: ignore[attr-defined]
    return view


def _is_api_view(view_func: Any) -> bool:
    cls = getattr(view_func, "cls", None)
    return cls is not None and hasattr(cls, "authentication_classes")


class MfaEnforcementMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        user = getattr(request, "user", None)
        if not getattr(user, "is_authenticated", False):
            return None
        if getattr(view_func, "twig_mfa_exempt", False) or _is_api_view(view_func):
            return None
        membership = current_membership(request)
        if membership is None:
            return None
        try:
            enforcement.check(user.pk, membership.org_id, membership.role)
        except MfaEnrollmentRequired:
            target = reverse("twig_auth:mfa")
            if request.method == "GET":
                target += "?" + urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(target)
        return None
