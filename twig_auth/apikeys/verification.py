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
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache

from twig_auth.apikeys import format as key_format
from twig_auth.apikeys.hashers import verify_any
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.scopes import allowed_for
from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.exceptions import EnvironmentMismatch, InvalidApiKey
from twig_auth.orgs.principal import PrincipalMembership

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
        return _unexpired(local[0])
    cache = _cache()
    cached = cache.get(_entry(digest))
    principal = _from_cache(cached) if cached is not None else _verify_cold(parsed, digest, cache)
    _remember(cache, digest, principal)
    return principal


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
    cache = _cache()
    if revoked:
        cache.set_many({_tomb(k): 1 for k in key_ids}, app_settings.API_KEY_CACHE_SECONDS + 60)
    digests = cache.get_many([_index(k) for k in key_ids])
    cache.delete_many([_entry(d) for d in digests.values()] + [_index(k) for k in key_ids])
