"""The end of every SSO login, SAML or OIDC: the protocol code validates what the IdP sent and hands over an
:class:`SsoIdentity`; this module decides whether that identity may sign in here and signs it in.

Kept protocol-free on purpose: the rules (enterprise plan, enabled connection, allowed email domains, JIT
accounts, group → role mapping, whether the IdP's MFA counts) must be the same whichever protocol carried the
identity, and the failure page must never reveal why the protocol layer refused (that goes to the audit log).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.conf import app_settings
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import TwigAuthError
from twig_auth.orgs import policy
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import ROLE_RANK, Role
from twig_auth.sso.models import SsoConnection, SsoDomain, normalize_domain

METHOD = "sso"
METHOD_IDP_MFA = "sso+idp_mfa"  # the MFA method of a login whose IdP MFA the org trusts (counts as MFA here)


@dataclass(frozen=True)
class SsoIdentity:
    """Who the IdP says signed in. Built only from a validated assertion / ID token."""

    email: str                 # as asserted (NameID or mapped attribute / OIDC email claim)
    subject: str               # NameID / OIDC sub
    first_name: str = ""
    last_name: str = ""
    groups: tuple[str, ...] = ()
    idp_mfa: bool = False      # SAML AuthnContext says MFA, or OIDC amr contains "mfa"/"otp"/"hwk"/...


def sso_failed(request: HttpRequest, *, org: Any, connection: SsoConnection | None = None, reason: str,
               detail: str = "", status: int = 403, email: str | None = None) -> HttpResponse:
    """The "Authentication failed" page + an ``SSO_FAILURE`` audit event.

    The page says nothing about the cause (an attacker probing the ACS learns nothing); the audit event holds
    ``reason`` (a short code), the protocol and connection id, and ``detail`` (a short, secret-free
    explanation for the org admin). Never an assertion or a token: the caller passes neither.
    """
    details: dict[str, Any] = {"reason": reason,
                               "protocol": connection.protocol if connection is not None else "",
                               "connection": connection.pk if connection is not None else ""}
    if detail:
        details["detail"] = detail[:500]
    record(Event.SSO_FAILURE, context=RequestContext.from_request(request), org=org,
           email=(email or "")[:254].lower() or None, details=details)
    return render(request, "twig_auth/sso/failed.html", {"org_name": getattr(org, "name", "")}, status=status)


def complete_sso_login(request: HttpRequest, connection: SsoConnection, identity: SsoIdentity,
                       next_url: str = "") -> HttpResponse:
    """Sign in the user the IdP vouched for (one transaction; every refusal audited as ``SSO_FAILURE``).

    Refused: a disabled connection, an org not on the enterprise plan, an email outside the org's allowed
    domains (``sso.allowedDomains``, else its verified SSO domains; the "Unauthorized domain" page), a
    deactivated account. Otherwise the user is found by email (case-insensitive) or created (JIT, unusable
    password), becomes a member of the org if not yet one (role ``user``, or the highest role its IdP groups
    map to), and is signed in with the org active. A user with a twig second factor still enters its code
    (/login/verify/) unless the org trusts the IdP's MFA and the IdP says it did MFA.
    """
    try:
        with transaction.atomic():
            return _complete(request, connection, identity, next_url)
    except _MembershipRefused as exc:  # the JIT account rolled back with it; the refusal is audited after
        return sso_failed(request, org=connection.org, connection=connection, reason="membership_refused",
                          detail=exc.detail, email=exc.email)


class _MembershipRefused(Exception):
    def __init__(self, detail: str, email: str) -> None:
        super().__init__(detail)
        self.detail, self.email = detail, email


def _complete(request: HttpRequest, connection: SsoConnection, identity: SsoIdentity,
              next_url: str) -> HttpResponse:
    org = connection.org
    email = _clean_email(identity.email)

    def fail(reason: str, detail: str = "") -> HttpResponse:
        return sso_failed(request, org=org, connection=connection, reason=reason, detail=detail,
                          email=email or None)

    if not connection.enabled:
        return fail("connection_disabled")
    if not org.is_enterprise:
        return fail("not_enterprise", "SSO requires the enterprise plan.")
    if not email:
        return fail("no_email", "The IdP sent no usable email address.")
    domain = email.rpartition("@")[2]
    if not domain_allowed(org, domain):
        record(Event.SSO_FAILURE, context=RequestContext.from_request(request), org=org, email=email,
               details={"reason": "unauthorized_domain", "protocol": connection.protocol,
                        "connection": connection.pk, "domain": domain})
        return render(request, "twig_auth/sso/unauthorized_domain.html",
                      {"org_name": org.name, "domain": domain}, status=403)
    user = _find_user(email)
    if user is not None and not user.is_active:
        return fail("user_inactive", "The account is deactivated.")
    if user is None:
        user = _create_user(email, identity)
    try:
        _ensure_membership(request, connection, user, identity)
    except TwigAuthError as exc:  # e.g. a separation-of-duties rule refusing the mapped role
        raise _MembershipRefused(str(exc)[:300], email) from exc

    trusted_mfa = identity.idp_mfa and connection.trust_idp_mfa
    details = {"method": METHOD, "protocol": connection.protocol, "connection": connection.pk,
               "idpMfa": bool(identity.idp_mfa)}
    target = _safe_target(request, next_url)
    from twig_auth.mfa import pending
    from twig_auth.mfa.devices import has_mfa
    from twig_auth.passwords.views import finish_login

    if has_mfa(user) and not trusted_mfa:
        pending.begin(request.session, user, target, sso={"org": org.pk, "details": details})
        return HttpResponseRedirect(reverse("twig_auth:login_mfa"))
    return finish_login(request, user, mfa_method=METHOD_IDP_MFA if trusted_mfa else None,
                        next_url=target, org=org, login_details=details)


def domain_allowed(org: Any, domain: str) -> bool:
    """Is ``domain`` (exact, normalized) allowed to sign in to ``org`` by SSO?

    The org's ``sso.allowedDomains`` list when it has one, else its verified SSO domains: an IdP is trusted for
    the domains the org proved (or listed), never for any address it cares to assert.
    """
    domain = normalize_domain(domain)
    listed = policy.effective(org).get("sso", {}).get("allowedDomains") or []
    if listed:
        return domain in {normalize_domain(d) for d in listed}
    return SsoDomain.objects.verified().filter(org=org, domain=domain).exists()


def mapped_role(connection: SsoConnection, groups: tuple[str, ...] | list[str]) -> str:
    """The highest org role the user's IdP groups map to (``user`` when none maps)."""
    mapping = connection.group_role_mapping or {}
    roles = [mapping[g] for g in groups if g in mapping and mapping[g] in ROLE_RANK]
    return max(roles, key=ROLE_RANK.__getitem__) if roles else Role.USER


def _clean_email(value: Any) -> str:
    """Return the asserted email lowercased with its domain in ASCII form, or "" if it is not an address."""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or len(value) > 254 or any(c.isspace() for c in value):
        return ""
    return f"{local.lower()}@{normalize_domain(domain)}"


def _find_user(email: str) -> Any | None:
    User = get_user_model()
    return User._default_manager.filter(**{f"{User.get_email_field_name()}__iexact": email}).first()


def _create_user(email: str, identity: SsoIdentity) -> Any:
    """JIT account: no usable password (it signs in through its org's IdP, or sets one by password reset)."""
    User = get_user_model()
    extra: dict[str, Any] = {}
    name = " ".join(p for p in (identity.first_name.strip(), identity.last_name.strip()) if p)
    if name and any(f.name == "name" for f in User._meta.get_fields()):
        extra["name"] = name[:150]
    return User._default_manager.create_user(email, None, **extra)


def _ensure_membership(request: HttpRequest, connection: SsoConnection, user: Any,
                       identity: SsoIdentity) -> None:
    """Add ``user`` to the connection's org unless already a member (an existing member's role is not
    changed here: roles granted in twig are the org admin's call)."""
    from twig_auth.orgs.services import add_member

    existing = Membership.objects.filter(org=connection.org, user=user).values_list("deactivated_at", flat=True)
    if existing:
        if existing[0] is not None:  # the IdP's word does not undo an admin's (or the inactivity policy's) deactivation
            raise _MembershipRefused("The member is deactivated in this organization.",
                                     _clean_email(getattr(user, user.get_email_field_name(), "")))
        return
    request_context = RequestContext.from_request(request)
    # No actor: the IdP, configured by the org's admins, is what vouches for this membership.
    context = RequestContext(actor=None, ip=request_context.ip, user_agent=request_context.user_agent,
                             session_id=request_context.session_id)
    add_member(org=connection.org, user=user, role=mapped_role(connection, identity.groups), context=context)


def _safe_target(request: HttpRequest, next_url: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        return next_url
    return app_settings.LOGIN_REDIRECT_URL


def unavailable(request: HttpRequest, connection: SsoConnection, *, configured: bool,
                missing: str) -> HttpResponse | None:
    """The refusal page when ``connection`` cannot be used now (disabled, org off the enterprise plan, or not
    ``configured`` — ``missing`` says what, for the audit record), else None. Shared by both protocols."""
    if not connection.enabled:
        return sso_failed(request, org=connection.org, connection=connection, reason="connection_disabled")
    if not connection.org.is_enterprise:
        return sso_failed(request, org=connection.org, connection=connection, reason="not_enterprise")
    if not configured:
        return sso_failed(request, org=connection.org, connection=connection, reason="not_configured",
                          detail=missing)
    return None
