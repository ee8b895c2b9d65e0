"""Verify an access token per request: signature and expiry in process, family revocation in ONE cache ``get``.

0 SQL queries. The one round trip is the revoked-family marker ``twig:tok:rf:<family>``, written by
:func:`twig_auth.tokens.services.revoke_family` with a TTL of the access-token lifetime (no access token
of the family can outlive it). With Redis as the cache every worker sees a revocation at the next request;
an API-key request makes its own single round trip instead, never both. When the view is rate limited,
the marker read and the member's bucket share that one round trip
(:func:`authenticate_access_token_and_take`).

When Redis is unreachable (:mod:`twig_auth.core.outage`) the check is one indexed query instead: is any
refresh row of the family revoked (revocation revokes them all). The marker is read through the raising
client (:func:`twig_auth.core.cache.strict`), so a failed read is never taken for "no marker". Markers that
could not be written during an outage are written by :func:`reapply_since` when Redis answers again.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from django.contrib.auth import get_user_model
from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed
from django.dispatch import receiver

from twig_auth.conf import app_settings
from twig_auth.core import clock, outage
from twig_auth.core.cache import REDIS_ERRORS, attempt, strict
from twig_auth.exceptions import InvalidToken
from twig_auth.orgs.principal import PrincipalMembership
from twig_auth.tokens import jwt

if TYPE_CHECKING:
    from twig_auth.ratelimit.bucket import BucketResult, Items

REVOKED = "The token has been revoked."


_local = threading.local()


def _cache() -> BaseCache:
    """Return the marker cache. Memoized per thread: ``caches[alias]`` costs about as much as the ``get``."""
    cache: BaseCache | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = caches[app_settings.REDIS_CACHE_ALIAS]
    return cache


def _client() -> Any:
    """The raising client of the marker cache (see the module doc), memoized per thread like the cache."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = strict(_cache())
    return client


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
    return authenticate_access_token_and_take(token)[0]


# ``buckets(principal)`` -> the rate-limit buckets to take from when the family is not revoked, or None.
BucketsFor = Callable[[AccessPrincipal], "Items | None"]


def authenticate_access_token_and_take(token: str, buckets: BucketsFor | None = None,
                                       ) -> tuple[AccessPrincipal, BucketResult | None]:
    """:func:`authenticate_access_token`, and with ``buckets`` on Redis also the rate-limit take: one script
    reads the family's revocation marker and, only when there is none, takes a token from each bucket
    (:func:`twig_auth.ratelimit.bucket.take_gated`). The result is ``None`` when nothing was taken (the
    local-memory cache, an outage, or no buckets): the caller then takes on its own."""
    principal = principal_of(jwt.decode(token))
    items = buckets(principal) if buckets is not None else None
    taken: BucketResult | None = None
    if items and outage.redis_available() and _client() is not _cache():
        revoked, taken, settled = _marker_and_take(principal.family, items)
        if not settled:
            revoked, taken = _family_revoked(principal.family), None
    else:
        revoked = _family_revoked(principal.family)
    if revoked:
        raise InvalidToken(REVOKED)
    return principal, taken


def _marker_and_take(family: str, items: Items) -> tuple[bool, BucketResult | None, bool]:
    """(revoked, token taken, settled): not settled when Redis failed or had just come back, so the caller
    asks :func:`_family_revoked` (which knows the database fallback and the recovery re-read)."""
    from twig_auth.ratelimit.bucket import take_gated

    client = _client()
    try:
        marker, taken = take_gated(client.make_key(family_marker(family)), b"", items, when="absent")
    except REDIS_ERRORS:
        outage.report_failure("access token revocation check")
        return False, None, False
    if outage.report_success():  # ended an outage: the read may predate the recovery hooks
        return False, None, False
    return marker is not None, taken, True


def _family_revoked(family: str) -> bool:
    if outage.redis_available():
        try:
            marker = _client().get(family_marker(family))
        except REDIS_ERRORS:
            outage.report_failure("access token revocation check")
        else:
            if outage.report_success():  # ended an outage: the read may predate the recovery hooks
                return _family_revoked(family)
            return marker is not None
    from twig_auth.tokens.models import RefreshToken

    return RefreshToken.objects.filter(family=family, revoked_at__isnull=False).exists()


def mark_revoked(families: Iterable[str]) -> None:
    """Write the revocation markers of ``families``. Never raises because of Redis: the revoked rows are the
    truth (read while Redis is down) and :func:`reapply_since` writes the markers once it is back."""
    markers = {family_marker(f): 1 for f in families}
    if markers:
        attempt("token revocation", _client().set_many, markers, timeout=app_settings.ACCESS_TOKEN_SECONDS)


def reapply_since(started: float) -> None:
    """Write the markers of every family revoked within an access token's lifetime (plus a margin), whenever
    the outage began: a family revoked earlier has no live access token left, and a Redis that came back
    empty lost the markers of families revoked before the outage too."""
    from twig_auth.tokens.models import RefreshToken

    since = clock.now() - dt.timedelta(seconds=app_settings.ACCESS_TOKEN_SECONDS + outage.RECOVERY_MARGIN_SECONDS)
    families = sorted(set(RefreshToken.objects.filter(revoked_at__gte=since).values_list("family", flat=True)))
    client = _client()
    for start in range(0, len(families), 500):
        client.set_many({family_marker(f): 1 for f in families[start:start + 500]},
                        timeout=app_settings.ACCESS_TOKEN_SECONDS)


outage.on_recovery(reapply_since)
