"""The active organization of a web request: chosen at login, switchable, kept in the session."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import PermissionDenied
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import Role

SESSION_KEY = "twig_org_id"


def memberships_of(user: Any) -> list[Membership]:
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Membership.objects.active().filter(user=user).select_related("org").order_by("org__name"))


def active_membership(request: HttpRequest) -> Membership | None:
    """Return the membership of the active org, falling back to the user's first org."""
    user = getattr(request, "user", None)
    if not getattr(user, "is_authenticated", False):
        return None
    from twig_auth.sso.enforcement import session_may_enter

    org_id = request.session.get(SESSION_KEY)
    qs = Membership.objects.active().filter(user=user).select_related("org")  # never a deactivated membership
    membership = qs.filter(org_id=org_id).first() if org_id else None
    if membership is None:
        # The first org this session may act in: never one that enforces SSO when it signed in otherwise.
        membership = next((m for m in qs.order_by("org__name") if session_may_enter(request.session, m)), None)
        if membership is not None:
            request.session[SESSION_KEY] = membership.org_id
    return membership


def switch_org(request: HttpRequest, org_id: Any) -> Membership:
    """Make ``org_id`` the active org of this session; the user must be a member."""
    text = str(org_id)
    valid = text.isascii() and text.isdigit() and int(text) < 2**63
    membership = Membership.objects.filter(user=request.user, org_id=int(text)).select_related("org").first() \
        if valid else None
    if membership is None:
        raise PermissionDenied("You are not a member of that organization.")
    if membership.is_deactivated:
        raise PermissionDenied(f"Your access to {membership.org.name} is deactivated; ask one of its admins to "
                               "reactivate it.")
    from twig_auth.sso.enforcement import require_session_may_enter

    require_session_may_enter(request.session, membership)  # SsoRequired: that org signs in with SSO only
    request.session[SESSION_KEY] = membership.org_id
    request._twig_membership = membership  # type: ignore[attr-defined]
    mark_signed_in(membership.org_id, request.user)
    record(Event.ORG_SWITCHED, context=RequestContext.from_request(request), org=membership.org,
           target=membership.org)
    return membership


def mark_signed_in(org_id: Any, user: Any) -> None:
    """Note that ``user`` entered ``org_id`` now (a login or a switch into it): the membership's last login,
    which access reviews show and inactive-member deactivation counts from."""
    from twig_auth.core import clock

    if org_id is not None and getattr(user, "pk", None) is not None:
        Membership.objects.filter(org_id=getattr(org_id, "pk", org_id), user_id=user.pk).update(
            last_login_at=clock.now())


_UNSET = object()


def current_membership(request: HttpRequest) -> Membership | None:
    """Return the active membership of ``request``, computed once per request."""
    cached = getattr(request, "_twig_membership", _UNSET)
    if cached is _UNSET:
        cached = active_membership(request)
        request._twig_membership = cached  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]


def current_admin_membership(request: HttpRequest) -> Membership | None:
    """Return the active membership of ``request`` when it is an admin or above, else None (the settings
    pages of the org answer the forbidden page then)."""
    membership = current_membership(request)
    return membership if membership is not None and membership.has_role(Role.ADMIN) else None


def context_processor(request: HttpRequest) -> dict[str, Any]:
    """Template context: ``twig_membership`` (lazy) and ``twig_memberships`` for the org switcher."""
    return {
        "twig_membership": SimpleLazyObject(lambda: current_membership(request)),
        "twig_memberships": SimpleLazyObject(lambda: memberships_of(getattr(request, "user", None))),
    }
