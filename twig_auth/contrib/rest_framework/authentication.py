"""DRF authentication classes."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.functional import SimpleLazyObject, empty
from rest_framework import authentication
from rest_framework.request import Request

from twig_auth.apikeys import format as key_format
from twig_auth.apikeys.verification import KeyPrincipal, authenticate_key_and_take
from twig_auth.contrib.rest_framework.exceptions import BEARER_CHALLENGE, DomainAPIException
from twig_auth.contrib.rest_framework.throttling import key_buckets, member_buckets
from twig_auth.core import clock
from twig_auth.exceptions import InvalidApiKey, IpNotAllowed, MfaEnrollmentRequired, TwigAuthError
from twig_auth.mfa import enforcement
from twig_auth.netaccess import enforce as netaccess
from twig_auth.orgs.active import current_membership
from twig_auth.tokens.verification import AccessPrincipal, authenticate_access_token_and_take


def enforce_mfa_enrollment(request: Request, user_id: Any, org_id: Any, role: str, *,
                           hint: float | None = None) -> None:
    """Answer 403 ``mfa_enrollment_required`` for a member whose MFA grace period is over and who has no
    device, whatever the credential. Views with ``mfa_enrollment_exempt = True`` (logout) always pass.

    ``hint`` is the grace deadline a credential carries (access-token claim, cached API-key principal): 0 or
    a future moment needs no lookup; once it has passed, the member's current standing decides (they may
    have enrolled since). Without a hint (web sessions) the cached standing is read every time."""
    if hint is not None and (not hint or clock.now().timestamp() < hint):
        return
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if getattr(view, "mfa_enrollment_exempt", False):
        return
    try:
        enforcement.check(user_id, org_id, role)
    except MfaEnrollmentRequired as exc:
        raise DomainAPIException(exc) from None


def enforce_ip_allowlist(request: Request, **kwargs: Any) -> None:
    """Answer 403 ``ip_not_allowed`` when the client IP is outside the org's (or the key's) allowlist; see
    :func:`twig_auth.netaccess.enforce.check` for the arguments. No query or cache trip when allowed.
    Views with ``ip_allowlist_exempt = True`` (logout: ending one's own session is always allowed) pass."""
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if getattr(view, "ip_allowlist_exempt", False):
        return
    try:
        netaccess.check(request._request, **kwargs)
    except IpNotAllowed as exc:
        raise DomainAPIException(exc) from None


class SessionAuthentication(authentication.SessionAuthentication):
    """Django-session authentication whose failures answer 401 with ``WWW-Authenticate: Bearer``.

    DRF answers 403 to unauthenticated requests when the first authenticator names no scheme; the
    contract wants 401 ``not_authenticated``, and Bearer is how API clients authenticate.
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is not None:
            membership = current_membership(request._request)
            if membership is not None:
                enforce_ip_allowlist(request, org_id=membership.org_id, credential="session", user_id=result[0].pk)
                enforce_mfa_enrollment(request, result[0].pk, membership.org_id, membership.role)
        return result

    def authenticate_header(self, request: Request) -> str:
        return BEARER_CHALLENGE


class LazyUser(SimpleLazyObject):
    """The key's creator, loaded from the database only when a view touches more than ``pk``.

    ``is_authenticated`` and ``pk`` answer without a query, so permission checks stay at 0 SQL.
    """

    is_authenticated = True
    is_anonymous = False

    def __bool__(self) -> bool:  # DRF's IsAuthenticated tests ``bool(request.user)``: answer without a query
        return True

    def __init__(self, user_id: Any) -> None:
        # What SimpleLazyObject.__init__ does, written straight into __dict__: built on every API request.
        state = self.__dict__
        state["_setupfunc"] = partial(_load_user, user_id)
        state["_wrapped"] = empty
        state["pk"] = state["id"] = user_id


def _load_user(user_id: Any) -> Any:
    return get_user_model()._default_manager.get(pk=user_id)


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer twigsk_live_…``. ``request.user`` is the key's creator (lazy);
    ``request.auth`` is the :class:`~twig_auth.apikeys.verification.KeyPrincipal`.

    Other Bearer credentials that are not twig keys (JWT access tokens) are left to later authenticators.
    """

    def authenticate(self, request: Request) -> tuple[Any, KeyPrincipal] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is None:
            return None
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer":
            if key_format.looks_like_key(header.strip()):
                raise DomainAPIException(InvalidApiKey(
                    'Send the key as "Authorization: Bearer <key>"; the "Bearer " prefix is missing.'))
            return None
        if not credentials.strip():
            raise DomainAPIException(InvalidApiKey('The Authorization header has no key after "Bearer ".'))
        if _looks_like_jwt(credentials.strip()):
            return None
        try:
            buckets = key_buckets(request)
            principal, taken = authenticate_key_and_take(credentials, buckets)
        except TwigAuthError as exc:
            raise DomainAPIException(exc) from None
        if buckets is not None:
            buckets.keep(request, principal, taken)
        enforce_ip_allowlist(request, org_id=principal.org_id, credential="api_key", user_id=principal.user_id,
                             key_allowlist=principal.allowed_ips, key_id=principal.key_id)
        request._request.twig_api_key = principal  # type: ignore[attr-defined]  (read by the usage middleware)
        enforce_mfa_enrollment(request, principal.user_id, principal.org_id, principal.role,
                               hint=principal.mfa_deadline)
        return LazyUser(principal.user_id), principal

    def authenticate_header(self, request: Request) -> str:
        return BEARER_CHALLENGE


class JwtAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <access token>`` (a JWT from ``POST /api/auth/token``).

    0 SQL queries and one cache ``get`` (the family's revocation marker). ``request.user`` is a lazy user
    loaded only when a view needs more than its ``pk``; ``request.auth`` is the
    :class:`~twig_auth.tokens.verification.AccessPrincipal`, whose ``membership`` is what the permission
    classes use. Tokens are not scoped: :class:`HasScope` restricts API keys only.
    """

    def authenticate(self, request: Request) -> tuple[Any, AccessPrincipal] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is None:
            return None
        scheme, _, credentials = header.partition(" ")
        token = credentials.strip()
        if scheme.lower() != "bearer" or not _looks_like_jwt(token):
            return None
        try:
            buckets = member_buckets(request)
            principal, taken = authenticate_access_token_and_take(token, buckets)
        except TwigAuthError as exc:
            raise DomainAPIException(exc) from None
        if buckets is not None:
            buckets.keep(request, principal, taken)
        enforce_ip_allowlist(request, org_id=principal.org_id, credential="access_token", user_id=principal.user_id)
        enforce_mfa_enrollment(request, principal.user_id, principal.org_id, principal.role,
                               hint=principal.mfa_deadline)
        return LazyUser(principal.user_id), principal

    def authenticate_header(self, request: Request) -> str:
        return BEARER_CHALLENGE
