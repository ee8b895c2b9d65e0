"""``MfaEnforcementMiddleware``: after the grace period, a member who must use MFA and has no device is sent
to enrollment on every page, the Django admin included. Place it after ``AuthenticationMiddleware``.

DRF views are left to the DRF authentication classes, which answer 403 ``mfa_enrollment_required`` for
every credential (session, access token, API key). Views marked with :func:`mfa_exempt` (login, logout,
enrollment, org switch) always pass.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from twig_auth.core.middleware import MemberPageGate, marker
from twig_auth.exceptions import MfaEnrollmentRequired
from twig_auth.mfa import enforcement

mfa_exempt = marker("twig_mfa_exempt")
mfa_exempt.__doc__ = "Mark a view that members blocked by the MFA policy may still open."


class MfaEnforcementMiddleware(MemberPageGate):
    exempt_attribute = "twig_mfa_exempt"

    def refuse(self, request: HttpRequest, user: Any, membership: Any) -> HttpResponse | None:
        try:
            enforcement.check(user.pk, membership.org_id, membership.role)
        except MfaEnrollmentRequired:
            target = reverse("twig_auth:mfa")
            if request.method == "GET":
                target += "?" + urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(target)
        return None
