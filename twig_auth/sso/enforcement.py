"""Enforce SSO: an org that turns ``sso.enforce`` on stops accepting its members' passwords.

The check runs AFTER the password was verified (page and ``POST /api/auth/token``): someone without the
password gets the ordinary "Invalid email or password" and learns nothing about which org the account belongs
to; wrong passwords still count toward the lockout. Members whose role is in ``SSO_BREAK_GLASS_ROLES``
(super admins by default) may still sign in with their password and second factor, so an IdP outage or a
broken configuration cannot lock the org out; those logins are audited with ``{"breakGlass": true}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twig_auth.conf import app_settings
from twig_auth.exceptions import InvalidInput, SsoRequired
from twig_auth.orgs import policy
from twig_auth.orgs.models import Membership, Organization
from twig_auth.sso.models import SsoConnection
from twig_auth.sso.start import start_url

NO_CONNECTION = ("Enable a single sign-on connection before enforcing SSO; otherwise nobody but the break-glass "
                 "admins could sign in.")


def enabled_connection(org: Organization) -> SsoConnection | None:
    """The connection members of ``org`` are sent to (the oldest enabled one)."""
    return (SsoConnection.objects.select_related("org").filter(org=org, enabled=True)
            .order_by("created_at", "pk").first())


def enforces_sso(org: Organization) -> bool:
    """True when ``org`` (enterprise) has "Enforce SSO" on. A downgraded org stops enforcing."""
    return bool(org.is_enterprise and policy.effective(org)["sso"].get("enforce"))


def check_can_enforce(org: Organization) -> None:
    """Raise :class:`InvalidInput` (field ``sso.enforce``) unless ``org`` has an enabled connection."""
    if not SsoConnection.objects.filter(org=org, enabled=True).exists():
        raise InvalidInput({"sso.enforce": [NO_CONNECTION]}, NO_CONNECTION)


@dataclass(frozen=True)
class PasswordLogin:
    """The verdict on a verified password: allowed, and whether it took the break-glass exception."""

    break_glass: bool = False


def default_membership(user: Any) -> Membership | None:
    """The membership a login without an org choice acts in (the oldest not deactivated), like the token
    endpoint's default."""
    return Membership.objects.active().filter(user=user).select_related("org").order_by("created_at", "pk").first()


def check_password_login(membership: Membership | None, *, next_url: str = "") -> PasswordLogin:
    """Raise :class:`SsoRequired` (with ``sso_url`` when the org has an enabled connection) when the org of
    ``membership`` enforces SSO and the member is not a break-glass role; else say whether break-glass applied."""
    if membership is None or not enforces_sso(membership.org):
        return PasswordLogin()
    if is_break_glass(membership):
        return PasswordLogin(break_glass=True)
    raise sso_required(membership.org, next_url)


def is_break_glass(membership: Membership) -> bool:
    """Whether the member's role may still use a password in an org that enforces SSO."""
    return membership.role in (app_settings.SSO_BREAK_GLASS_ROLES or ())


def sso_required(org: Organization, next_url: str = "", detail: str | None = None) -> SsoRequired:
    """The :class:`SsoRequired` error for ``org``, with ``sso_url`` when it has an enabled connection."""
    connection = enabled_connection(org)
    extra = {"sso_url": start_url(connection, next_url)} if connection is not None else {}
    return SsoRequired(detail, **extra)


SSO_ORG_KEY = "twig_sso_org"  # session: the org this session signed in to through its SSO connection


def session_may_enter(session: Any, membership: Membership) -> bool:
    """Whether a signed-in session may act in ``membership``'s org: always, unless the org enforces SSO, the
    session did not sign in to it through SSO, and the member is not a break-glass role. Closes the side door
    of signing in with a password to an org that allows it, then switching to one that enforces SSO."""
    if not enforces_sso(membership.org) or is_break_glass(membership):
        return True
    return session.get(SSO_ORG_KEY) == membership.org_id


def require_session_may_enter(session: Any, membership: Membership) -> None:
    """Raise :class:`SsoRequired` (with ``sso_url``) when :func:`session_may_enter` says no."""
    if session_may_enter(session, membership):
        return
    raise sso_required(membership.org,
                       detail=f"{membership.org.name} signs in with single sign-on. Sign in with SSO to work in it.")
