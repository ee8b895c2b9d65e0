"""Verify an access token per request: signature and expiry in process, family revocation in ONE cache ``get``.

0 SQL queries. The one round trip is the revoked-family marker ``twig:tok:rf:<family>``, written by
:func:`twig_auth.tokens.services.revoke_family` with a TTL of the access-token lifetime (no access token
of the family can outlive it). With Redis as the cache every worker sees a revocation at the next request;
an API-key request makes its own single round trip instead, never both.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed
from django.dispatch import receiver

from twig_auth.conf import app_settings
from twig_auth.exceptions import InvalidToken
from twig_auth.orgs.principal import PrincipalMembership
from twig_auth.tokens import jwt

REVOKED = "The token has been revoked."


_local = threading.local()


def _cache() -> BaseCache:
    """Return the marker cache. Memoized per thread: ``caches[alias]`` costs about as much as the ``get``."""
    cache: BaseCache | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = caches[app_settings.REDIS_CACHE_ALIAS]
    return cache


def _user_pk() -> Any:
    field = getattr(_local, "user_pk", None)
    if field is None:
        field = _local.user_pk = get_user_model()._meta.pk
    return field


def reset() -> None:
    """Forget this thread's memoized cache and user pk field (settings changed)."""
    _local.__dict__.clear()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"CACHES", "TWIG_AUTH", "AUTH_USER_MODEL"}:
        reset()


def family_marker(family: str) -> str:
    return f"twig:tok:rf:{family}"


class AccessPrincipal(NamedTuple):
    """What a verified access token says; ``request.auth`` of a token request. Tokens carry no scopes.

    A named tuple rather than a frozen dataclass: it is built on every request and is cheaper to make.
    """

    user_id: Any
    org_id: int
    membership_id: int
    role: str
    roles: tuple[str, ...]
    family: str
    jti: str
    expires_at: int
    mfa_at: int | None = None
    mfa_deadline: int = 0

    @property
    def membership(self) -> PrincipalMembership:
        return PrincipalMembership(self)




def principal_of(claims: dict[str, Any]) -> AccessPrincipal:
    """Build the principal of verified claims; a claim of the wrong shape is an invalid token."""
    try:
        user_id = _user_pk().to_python(claims["sub"])
        org_id, membership_id = claims["org"], claims["mem"]
        role, roles, family, jti = claims["role"], claims["roles"], claims["fam"], claims["jti"]
    except Exception:  # noqa: BLE001  (KeyError, ValidationError …: signed by us, so only a bug or a stale shape)
        raise InvalidToken() from None
    if (type(org_id) is not int or type(membership_id) is not int or not isinstance(role, str)
            or not isinstance(roles, list) or not isinstance(family, str) or not isinstance(jti, str)):
        raise InvalidToken()
    mfa_at, deadline = claims.get("mfa_at"), claims.get("mfa_dl", 0)
    return AccessPrincipal(user_id, org_id, membership_id, role, tuple(roles), family, jti, claims["exp"],
                           mfa_at if type(mfa_at) is int else None, deadline if type(deadline) is int else 0)


def authenticate_access_token(token: str) -> AccessPrincipal:
    """Return the principal of a valid, unrevoked access token, or raise ``InvalidToken`` / ``TokenExpired``."""
    principal = principal_of(jwt.decode(token))
    if _cache().get(family_marker(principal.family)) is not None:
        raise InvalidToken(REVOKED)
    return principal
