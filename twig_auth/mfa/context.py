"""Template context for the grace-period banner: ``twig_mfa_grace`` is the member's standing while their org
requires MFA and the grace period runs, else empty. Lazy and cheap: one cached lookup
(:func:`twig_auth.mfa.enforcement.deadline`), evaluated only by templates that show the banner."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from twig_auth.core import clock
from twig_auth.mfa import enforcement
from twig_auth.orgs.active import current_membership


def grace(request: HttpRequest) -> dict[str, Any]:
    """Return ``{"days_left", "deadline", "org"}`` for a member in the grace period, else ``{}``."""
    if not getattr(getattr(request, "user", None), "is_authenticated", False):
        return {}
    membership = current_membership(request)
    if membership is None:
        return {}
    until = enforcement.deadline(request.user.pk, membership.org_id, membership.role)
    if not until or clock.now().timestamp() >= until:
        return {}  # not required, enrolled, or blocked (the middleware handles blocked members)
    deadline = dt.datetime.fromtimestamp(until, dt.UTC)
    status = enforcement.Status(required=True, enrolled=False, deadline=deadline)
    return {"days_left": status.days_left, "deadline": deadline, "org": membership.org}


def context_processor(request: HttpRequest) -> dict[str, Any]:
    return {"twig_mfa_grace": SimpleLazyObject(lambda: grace(request))}
