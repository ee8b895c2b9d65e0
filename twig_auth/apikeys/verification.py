"""Verify a presented API key: parse → checksum → cache → (on a miss) one indexed lookup and one hash.

Warm path: 0 SQL queries and 1 cache round trip (``GET`` of an entry keyed by the SHA-256 of the *full*
key, so knowing a key id alone never reaches a cached "valid"). The entry holds the principal, including
the expiry, so the cache never serves an expired key; revocation deletes the entry synchronously and
leaves a tombstone that a concurrent cold verification checks after writing, so it cannot re-cache a key
revoked under its feet.

Cold path protections against bcrypt being used as a CPU lever:

* single flight: one verifier per full key at a time (``cache.add`` lock); the others wait for its result;
* negative cache: a wrong key is remembered as wrong for ``API_KEY_NEGATIVE_CACHE_SECONDS``;
* hash budget: at most ``API_KEY_HASHES_PER_MINUTE`` hash checks per key id and minute, reserved
  *before* hashing, so a flood of distinct wrong secrets for a known id runs a bounded number of hashes.

When Redis is unreachable (:mod:`twig_auth.core.outage`) keys are verified on the database: one indexed
lookup of the row per request, so revocation, expiry and the creator's standing are checked every time,
and the secret hash only once per full key and process (an in-process map of digest -> the row that
passed it, bounded), under an in-process hash budget. Revocations committed while Redis was unreachable
could not delete cached entries; :func:`reapply_since` deletes them on the first success after the outage.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.db.models import Q

from twig_auth.apikeys import format as key_format
from twig_auth.apikeys.hashers import verify_any
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.scopes import allowed_for
from twig_auth.conf import app_settings
from twig_auth.core import clock, outage
from twig_auth.core.cache import REDIS_ERRORS, UNAVAILABLE, attempt, strict
from twig_auth.exceptions import EnvironmentMismatch, InvalidApiKey
from twig_auth.orgs.principal import PrincipalMembership

if TYPE_CHECKING:
    from twig_auth.ratelimit.bucket import BucketResult, Items

logger = logging.getLogger("twig_auth.apikeys")

NEGATIVE = "x"
LOCK_SECONDS = 5
WAIT_STEP = 0.01
INVALID = "The API key is not valid: it is unknown, revoked or expired."
LOCAL_MAX = 10_000


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """What a verified key may do; ``request.auth`` of an API-key request."""

    id: str
    key_id: str
    org_id: int
    membership_id: int
    user_id: int
    role: str
    scopes: frozenset[str]
    environment: str
    expires_at: float | None
    name: str
    mfa_deadline: float = 0.0  # when the creator's MFA grace ends (0: not covered or enrolled), as cached
    allowed_ips: tuple[str, ...] = ()  # the key's own IP allowlist (CIDR ranges); empty: the org's list only

    @property
    def membership(self) -> PrincipalMembership:
        return PrincipalMembership(self)

    @property
    def prefix(self) -> str:
        return f"{key_format.PREFIX}{self.environment}_{self.key_id}"




def _cache() -> BaseCache:
    return caches[app_settings.REDIS_CACHE_ALIAS]


def digest_of(full_key: str) -> str:
    return hashlib.sha256(full_key.encode("ascii")).hexdigest()


def _entry(digest: str) -> str:
    return f"twig:ak:v:{digest}"


def _index(key_id: str) -> str:
    return f"twig:ak:i:{key_id}"


def _tomb(key_id: str) -> str:
    return f"twig:ak:t:{key_id}"


# An in-process first level, used only in front of the local-memory cache. That cache is per process
# already, so this changes nothing about revocation (``invalidate`` clears both in the same call); it
# only skips the pickling. In front of Redis there is none: every worker must see a revocation at once.
_local: dict[str, tuple[KeyPrincipal, float]] = {}
_local_digest: dict[str, str] = {}  # key id -> digest, so invalidation never depends on a culled index


def _remember(cache: BaseCache, digest: str, principal: KeyPrincipal) -> None:
    if not isinstance(cache, LocMemCache):
        return
    if len(_local) >= LOCAL_MAX:
        clear_local()
    _local[digest] = (principal, time.monotonic() + app_settings.API_KEY_CACHE_SECONDS)
    _local_digest[principal.key_id] = digest


def clear_local() -> None:
    """Forget the in-process first level (tests; settings changes)."""
    _local.clear()
    _local_digest.clear()


def authenticate_key(raw: str) -> KeyPrincipal:
    """Return the principal of a valid key, or raise :class:`InvalidApiKey` / :class:`EnvironmentMismatch`."""
    return authenticate_key_and_take(raw)[0]


# ``buckets(key_id)`` -> the rate-limit buckets to take from when the key turns out valid, or None.
BucketsFor = Callable[[str], "Items | None"]


def authenticate_key_and_take(raw: str, buckets: BucketsFor | None = None) -> tuple[KeyPrincipal, BucketResult | None]:
    """:func:`authenticate_key`, and on the warm Redis path also the rate-limit take, in one round trip.

    With ``buckets`` given and the key's entry in Redis, one script reads the entry and, only when it is a
    valid one, takes a token from each bucket (:func:`twig_auth.ratelimit.bucket.take_gated`). The result
    is returned with the principal; ``None`` means nothing was taken (cold or database path, the
    local-memory cache, or no buckets known yet) and the caller takes on its own.
    """
    try:
        parsed = key_format.parse(raw)
    except key_format.KeyFormatError as exc:
        raise InvalidApiKey(str(exc)) from None
    mode = app_settings.API_MODE
    if parsed.environment != mode:
        raise EnvironmentMismatch(f"This is a {parsed.environment} key, but this deployment runs in {mode} mode.")
    digest = digest_of(parsed.full)
    local = _local.get(digest)
    if local is not None and local[1] > time.monotonic():
        return _unexpired(local[0]), None
    cache = _cache()
    if not outage.redis_available():
        return _verify_on_database(parsed, digest), None
    client = strict(cache)  # raises on failure even with IGNORE_EXCEPTIONS: the tombstone read must not fail open
    taken: BucketResult | None = None
    try:
        items = buckets(parsed.key_id) if buckets is not None and client is not cache else None
        if items:
            cached, taken = _read_and_take(client, digest, items)
        else:
            cached = client.get(_entry(digest))
        principal = _from_cache(cached) if cached is not None else _verify_cold(parsed, digest, client)
    except REDIS_ERRORS:
        outage.report_failure("API key verification")
        return _verify_on_database(parsed, digest), None
    if outage.report_success():  # ended an outage: the entry read may predate the recovery hooks; read again
        return authenticate_key_and_take(raw)[0], taken
    _remember(cache, digest, principal)
    return principal, taken


def _read_and_take(client: Any, digest: str, items: Items) -> tuple[Any, BucketResult | None]:
    """Read the entry and take the tokens in one script call on the django-redis client's server."""
    from twig_auth.ratelimit.bucket import take_gated

    raw, taken = take_gated(client.make_key(_entry(digest)), client.encode(NEGATIVE), items)
    return (None if raw is None else client.decode(raw)), taken


def _from_cache(cached: Any) -> KeyPrincipal:
    if cached == NEGATIVE:
        raise InvalidApiKey(INVALID)
    return _unexpired(KeyPrincipal(*cached))


def _unexpired(principal: KeyPrincipal) -> KeyPrincipal:
    if principal.expires_at is not None and principal.expires_at <= clock.now().timestamp():
        raise InvalidApiKey("The API key has expired.")
    return principal


def _verify_cold(parsed: key_format.ParsedKey, digest: str, cache: BaseCache) -> KeyPrincipal:
    lock = f"twig:ak:l:{digest}"
    if not cache.add(lock, 1, timeout=LOCK_SECONDS):
        cached = _wait_for(cache, _entry(digest))
        if cached is not None:
            return _from_cache(cached)
    try:
        cached = cache.get(_entry(digest))  # another verifier may have finished between our miss and the lock
        if cached is not None:
            return _from_cache(cached)
        return _lookup_and_hash(parsed, digest, cache)
    finally:
        cache.delete(lock)


def _wait_for(cache: BaseCache, key: str) -> Any:
    """Wait (bounded) for the verifier holding the lock to publish its answer."""
    deadline = time.monotonic() + LOCK_SECONDS
    while time.monotonic() < deadline:
        time.sleep(WAIT_STEP)
        value = cache.get(key)
        if value is not None:
            return value
    return None


def _take_hash_budget(cache: BaseCache, key_id: str) -> bool:
    window = int(clock.now().timestamp() // 60)
    key = f"twig:ak:b:{key_id}:{window}"
    cache.add(key, 0, timeout=120)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=120)
        used = 1
    return used <= app_settings.API_KEY_HASHES_PER_MINUTE


def _lookup_and_hash(parsed: key_format.ParsedKey, digest: str, cache: BaseCache) -> KeyPrincipal:
    negative_ttl = app_settings.API_KEY_NEGATIVE_CACHE_SECONDS
    row = (ApiKey.objects.select_related("created_by")
           .filter(key_id=parsed.key_id, environment=parsed.environment).first())
    if row is None:
        cache.set(_entry(digest), NEGATIVE, negative_ttl)
        _log_failure(parsed, "unknown key id")
        raise InvalidApiKey(INVALID)
    if not _take_hash_budget(cache, parsed.key_id):
        _log_failure(parsed, "hash budget exhausted")
        raise InvalidApiKey("Too many failed attempts with this API key id; try again in a minute.")
    if not verify_any(parsed.secret, row.hashed_secret):
        cache.set(_entry(digest), NEGATIVE, negative_ttl)
        _log_failure(parsed, "wrong secret")
        raise InvalidApiKey(INVALID)
    _hashed_ok(digest, row)
    problem = _state_problem(row)
    if problem:
        cache.set_many({_entry(digest): NEGATIVE, _index(row.key_id): digest}, negative_ttl)
        _log_failure(parsed, problem)
        raise InvalidApiKey(problem)
    principal = _principal(row)
    ttl = app_settings.API_KEY_CACHE_SECONDS
    if principal.expires_at is not None:
        ttl = max(1, min(ttl, int(principal.expires_at - clock.now().timestamp())))
    cache.set_many({_entry(digest): astuple(principal), _index(row.key_id): digest}, ttl)
    if cache.get(_tomb(row.key_id)) is not None:  # revoked while we were verifying
        cache.delete(_entry(digest))
        raise InvalidApiKey(INVALID)
    return principal


def _state_problem(row: ApiKey) -> str | None:
    now = clock.now()
    if row.revoked_at is not None:
        return "The API key was revoked."
    if row.expires_at is not None and row.expires_at <= now:
        return "The API key has expired."
    creator = row.created_by
    if creator is None or creator.org_id != row.org_id:
        return "The API key's creator is no longer a member of the organization."
    if creator.deactivated_at is not None:
        return "The API key's creator is deactivated in the organization."
    if not set(row.scopes) <= allowed_for(creator.role):
        return "The API key's creator no longer has a role that allows its scopes."
    return None


def _principal(row: ApiKey) -> KeyPrincipal:
    from twig_auth.mfa import enforcement

    creator = row.created_by
    assert creator is not None
    return KeyPrincipal(
        id=row.pk, key_id=row.key_id, org_id=row.org_id, membership_id=creator.pk, user_id=creator.user_id,
        role=creator.role, scopes=frozenset(row.scopes), environment=row.environment,
        expires_at=row.expires_at.timestamp() if row.expires_at else None, name=row.name,
        mfa_deadline=enforcement.deadline(creator.user_id, row.org_id, creator.role),
        allowed_ips=tuple(row.allowed_ips or ()),
    )


def _log_failure(parsed: key_format.ParsedKey, reason: str) -> None:
    logger.warning("API key rejected: %s (key %s…)", reason, parsed.prefix)


def invalidate(key_ids: Iterable[str], *, revoked: bool = False) -> None:
    """Delete the cached verification of these keys now; ``revoked`` also leaves a tombstone."""
    key_ids = list(key_ids)
    if not key_ids:
        return
    for key_id in key_ids:
        _local.pop(_local_digest.pop(key_id, ""), None)
    # Never raises because of Redis: the database row is the truth (the fallback path reads it), and what
    # could not be deleted now is deleted by :func:`reapply_since` when Redis answers again.
    client = strict(_cache())
    if revoked and attempt("API key invalidation", client.set_many, {_tomb(k): 1 for k in key_ids},
                           app_settings.API_KEY_CACHE_SECONDS + 60) is UNAVAILABLE:
        return
    digests = attempt("API key invalidation", client.get_many, [_index(k) for k in key_ids])
    if digests is UNAVAILABLE:
        return
    attempt("API key invalidation", client.delete_many,
            [_entry(d) for d in digests.values()] + [_index(k) for k in key_ids])


# --- Redis unavailable: verify on the database ----------------------------------------------------------

_fallback_lock = threading.Lock()
_verified: dict[str, tuple[str, str]] = {}  # digest of a full key -> (row pk, hashed secret) it passed
_budget: dict[str, tuple[int, int]] = {}  # key id -> (minute, hashes run in it), this process only


def _hashed_ok(digest: str, row: ApiKey) -> None:
    """Remember that this full key matched this row's hash, so an outage never hashes it again here."""
    with _fallback_lock:
        if len(_verified) >= LOCAL_MAX:
            _verified.clear()
        _verified[digest] = (row.pk, row.hashed_secret)


def _take_local_budget(key_id: str) -> bool:
    window = int(clock.now().timestamp() // 60)
    with _fallback_lock:
        if len(_budget) >= LOCAL_MAX:
            _budget.clear()
        minute, used = _budget.get(key_id, (window, 0))
        used = used + 1 if minute == window else 1
        _budget[key_id] = (window, used)
    return used <= app_settings.API_KEY_HASHES_PER_MINUTE


def _verify_on_database(parsed: key_format.ParsedKey, digest: str) -> KeyPrincipal:
    """Verify without Redis: the row every time, the hash once per full key and process."""
    row = (ApiKey.objects.select_related("created_by")
           .filter(key_id=parsed.key_id, environment=parsed.environment).first())
    if row is None:
        _log_failure(parsed, "unknown key id")
        raise InvalidApiKey(INVALID)
    if _verified.get(digest) != (row.pk, row.hashed_secret):
        if not _take_local_budget(parsed.key_id):
            _log_failure(parsed, "hash budget exhausted")
            raise InvalidApiKey("Too many failed attempts with this API key id; try again in a minute.")
        if not verify_any(parsed.secret, row.hashed_secret):
            _log_failure(parsed, "wrong secret")
            raise InvalidApiKey(INVALID)
        _hashed_ok(digest, row)
    problem = _state_problem(row)
    if problem:
        _log_failure(parsed, problem)
        raise InvalidApiKey(problem)
    return _principal(row)


def reapply_since(started: float) -> None:
    """Delete the cached verifications of keys revoked, or whose creator changed or left, since ``started``
    (Unix time; an outage's start): those changes could not reach Redis when they were made."""
    since = outage.changed_since(started)
    changed = (Q(revoked_at__gte=since) | Q(created_by__role_changed_at__gte=since)
               | Q(created_by__deactivated_at__gte=since) | Q(created_by__reactivated_at__gte=since)
               | Q(created_by__isnull=True, revoked_at__isnull=True))
    revoked = set(ApiKey.objects.filter(revoked_at__gte=since).values_list("key_id", flat=True))
    others = set(ApiKey.objects.filter(changed).values_list("key_id", flat=True)) - revoked
    cache = strict(_cache())
    for key_ids, tomb in ((sorted(revoked), True), (sorted(others), False)):
        for start in range(0, len(key_ids), 500):
            chunk = key_ids[start:start + 500]
            if tomb:
                cache.set_many({_tomb(k): 1 for k in chunk}, app_settings.API_KEY_CACHE_SECONDS + 60)
            digests = cache.get_many([_index(k) for k in chunk])
            cache.delete_many([_entry(d) for d in digests.values()] + [_index(k) for k in chunk])


outage.on_recovery(reapply_since)
