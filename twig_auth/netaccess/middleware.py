"""``IpAllowlistMiddleware``: a signed-in member whose active org has an IP allowlist that does not contain the
client IP gets a 403 page on every page, the Django admin included. Place it after
``AuthenticationMiddleware`` and ``MfaEnforcementMiddleware`` (system check ``twig_auth.E007``).

DRF views are left to the DRF authentication classes, which answer 403 ``ip_not_allowed`` in JSON for every
credential. Sign-in, sign-out and the org switch stay reachable, so a blocked member can leave or work in
another org: the URL names in ``exempt_view_names``, and any view marked with :func:`ip_allowlist_exempt`.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from twig_auth.core.http import client_ip
from twig_auth.core.middleware import MemberPageGate, marker
from twig_auth.exceptions import IpNotAllowed
from twig_auth.netaccess import enforce
from twig_auth.orgs.active import memberships_of

TEMPLATE = "twig_auth/netaccess/blocked.html"

ip_allowlist_exempt = marker("twig_ip_allowlist_exempt")
ip_allowlist_exempt.__doc__ = "Mark a view that members outside their org's IP allowlist may still open."


class IpAllowlistMiddleware(MemberPageGate):
    exempt_attribute = "twig_ip_allowlist_exempt"
    exempt_view_names = frozenset({"twig_auth:login", "twig_auth:logout", "twig_auth:choose_org",
                                   "admin:login", "admin:logout"})

    def refuse(self, request: HttpRequest, user: Any, membership: Any) -> HttpResponse | None:
        try:
            enforce.check(request, org_id=membership.org_id, credential="session", user_id=user.pk)
        except IpNotAllowed:
            return render(request, TEMPLATE, {
                "org": membership.org, "ip": client_ip(request),
                "can_switch": len(memberships_of(user)) > 1,
            }, status=403)
        return None
