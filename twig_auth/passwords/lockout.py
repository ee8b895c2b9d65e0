"""Account lockout: an atomic attempt counter per login identity, in Redis or in a locked database row.

The counter *reserves* an attempt before the password hash runs: a login may verify the password
only if its reservation number is within ``max_attempts``. So 50 parallel wrong logins run the hash
exactly ``max_attempts`` times and every other one is refused without hashing. The failure that
fills the budget locks the identity for ``lock_seconds``; a success clears the counter.

Times are epoch milliseconds from the clock seam, passed into the store, so tests can move time.

With Redis configured, :class:`ResilientLockoutStore` falls back to the database rows while Redis is
unreachable (:mod:`twig_auth.core.outage`), so logins keep working and keep counting; on recovery the locks
set in the database meanwhile are copied into Redis (:func:`reapply_since`). Attempts counted in Redis just
before the outage are not seen by the database store (a fresh budget there), nor the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from django.db import IntegrityError, transaction
from django.db.models import F

from twig_auth.core import clock, outage
from twig_auth.core.cache import REDIS_ERRORS
from twig_auth.core.crypto import keyed_digest
from twig_auth.core.redis import get_redis, redis_configured
from twig_auth.passwords.models import LoginThrottle


@dataclass(frozen=True)
class LockoutPolicy:
    max_attempts: int
    window_seconds: int
    lock_seconds: int

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> LockoutPolicy:
        return cls(doc["maxAttempts"], doc["windowSeconds"], doc["lockSeconds"])

    def stricter(self, other: LockoutPolicy) -> LockoutPolicy:
        return LockoutPolicy(min(self.max_attempts, other.max_attempts),
                             max(self.window_seconds, other.window_seconds),
                             max(self.lock_seconds, other.lock_seconds))


@dataclass(frozen=True)
class Reservation:
    """The answer to "may this login verify its password?"; ``retry_after`` is in seconds."""

    allowed: bool
    retry_after: int = 0


class LockoutStore(Protocol):
    def reserve(self, key: str, now_ms: int, policy: LockoutPolicy) -> Reservation: ...
    def fail(self, key: str, now_ms: int, policy: LockoutPolicy) -> bool: ...
    def succeed(self, key: str) -> None: ...
    def locked_until_ms(self, key: str, now_ms: int) -> int: ...


def retry_seconds(until_ms: int, now_ms: int) -> int:
    """Return whole seconds from ``now_ms`` until ``until_ms``, at least 1."""
    return max(1, -(-(until_ms - now_ms) // 1000))


# KEYS[1] = hash {n, w, l}; ARGV = now_ms, window_ms, max_attempts, ttl_ms
_RESERVE = """
local now = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'n', 'w', 'l')
local n, w, l = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
if l > now then return {0, l} end
if w <= now then n = 0; w = now + tonumber(ARGV[2]) end
n = n + 1
redis.call('HSET', KEYS[1], 'n', n, 'w', w, 'l', 0)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
if n > tonumber(ARGV[3]) then return {0, w} end
return {1, 0}
"""
# KEYS[1]; ARGV = now_ms, max_attempts, lock_ms  -> 1 when this failure locked the identity
_FAIL = """
local now = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'n', 'l')
local n, l = tonumber(h[1]) or 0, tonumber(h[2]) or 0
if l > now or n < tonumber(ARGV[2]) then return 0 end
local until_ms = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'n', 0, 'w', 0, 'l', until_ms)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
return 1
"""

# KEYS[1]; ARGV = locked_until_ms, ttl_ms  -> lock the identity until then, unless Redis has a later lock
_COPY_LOCK = """
local l = tonumber(redis.call('HGET', KEYS[1], 'l')) or 0
if l >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'n', 0, 'w', 0, 'l', ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


class RedisLockoutStore:
    """Counters in one Redis hash per identity, changed only by Lua scripts (atomic)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._reserve = client.register_script(_RESERVE)
        self._fail = client.register_script(_FAIL)

    def reserve(self, key: str, now_ms: int, policy: LockoutPolicy) -> Reservation:
        ttl = (max(policy.window_seconds, policy.lock_seconds) + 60) * 1000
        ok, until = self._reserve(keys=[key], args=[now_ms, policy.window_seconds * 1000,
                                                    policy.max_attempts, ttl])
        return Reservation(True) if ok else Reservation(False, retry_seconds(int(until), now_ms))

    def fail(self, key: str, now_ms: int, policy: LockoutPolicy) -> bool:
        return bool(self._fail(keys=[key], args=[now_ms, policy.max_attempts, policy.lock_seconds * 1000]))

    def succeed(self, key: str) -> None:
        self.client.delete(key)

    def locked_until_ms(self, key: str, now_ms: int) -> int:
        raw = self.client.hget(key, "l")
        until = int(raw or 0)
        return until if until > now_ms else 0


class DatabaseLockoutStore:
    """Counters in :class:`LoginThrottle` rows; each change holds the row's write lock."""

    def _locked_row(self, key: str) -> LoginThrottle:
        # The UPDATE takes the row lock on PostgreSQL and the write lock on SQLite before we read.
        if not LoginThrottle.objects.filter(key=key).update(count=F("count")):
            try:
                with transaction.atomic():
                    LoginThrottle.objects.create(key=key)
            except IntegrityError:
                pass
            LoginThrottle.objects.filter(key=key).update(count=F("count"))
        return LoginThrottle.objects.select_for_update().get(key=key)

    @transaction.atomic
    def reserve(self, key: str, now_ms: int, policy: LockoutPolicy) -> Reservation:
        row = self._locked_row(key)
        if row.locked_until_ms > now_ms:
            return Reservation(False, retry_seconds(row.locked_until_ms, now_ms))
        if row.window_ends_ms <= now_ms:
            row.count, row.window_ends_ms = 0, now_ms + policy.window_seconds * 1000
        row.count += 1
        row.locked_until_ms = 0
        row.save(update_fields=["count", "window_ends_ms", "locked_until_ms"])
        if row.count > policy.max_attempts:
            return Reservation(False, retry_seconds(row.window_ends_ms, now_ms))
        return Reservation(True)

    @transaction.atomic
    def fail(self, key: str, now_ms: int, policy: LockoutPolicy) -> bool:
        row = self._locked_row(key)
        if row.locked_until_ms > now_ms or row.count < policy.max_attempts:
            return False
        row.count, row.window_ends_ms = 0, 0
        row.locked_until_ms = now_ms + policy.lock_seconds * 1000
        row.save(update_fields=["count", "window_ends_ms", "locked_until_ms"])
        return True

    def succeed(self, key: str) -> None:
        LoginThrottle.objects.filter(key=key).delete()

    def locked_until_ms(self, key: str, now_ms: int) -> int:
        until = LoginThrottle.objects.filter(key=key).values_list("locked_until_ms", flat=True).first() or 0
        return until if until > now_ms else 0


class ResilientLockoutStore:
    """The Redis store, and the database store whenever Redis is unreachable."""

    def __init__(self, redis_store: RedisLockoutStore) -> None:
        self.redis = redis_store
        self.database = DatabaseLockoutStore()

    def _call(self, method: str, *args: Any) -> Any:
        if outage.redis_available():
            try:
                result = getattr(self.redis, method)(*args)
            except REDIS_ERRORS:
                outage.report_failure("account lockout")
            else:
                if outage.report_success() and method == "locked_until_ms":  # recovered: locks were copied since
                    return self.redis.locked_until_ms(*args)
                return result
        return getattr(self.database, method)(*args)

    def reserve(self, key: str, now_ms: int, policy: LockoutPolicy) -> Reservation:
        return self._call("reserve", key, now_ms, policy)

    def fail(self, key: str, now_ms: int, policy: LockoutPolicy) -> bool:
        return self._call("fail", key, now_ms, policy)

    def succeed(self, key: str) -> None:
        self._call("succeed", key)

    def locked_until_ms(self, key: str, now_ms: int) -> int:
        return self._call("locked_until_ms", key, now_ms)


def get_store() -> LockoutStore:
    """Return the Redis store (falling back to the database) when a django-redis cache is configured, else
    the database store."""
    return ResilientLockoutStore(RedisLockoutStore(get_redis())) if redis_configured() else DatabaseLockoutStore()


def reapply_since(started: float) -> None:
    """Copy the locks the database store set during an outage into Redis, then drop those rows (their
    counters served the outage only)."""
    if not redis_configured():
        return
    now = now_ms()
    client = get_redis()
    rows = list(LoginThrottle.objects.filter(locked_until_ms__gt=now).values_list("key", "locked_until_ms"))
    copy = client.register_script(_COPY_LOCK)
    for key, until in rows:
        copy(keys=[key], args=[until, until - now + 1000])
    LoginThrottle.objects.filter(key__in=[k for k, _ in rows]).delete()


outage.on_recovery(reapply_since)


def identity_key(email: str) -> str:
    """Return the counter key of a login identity: a digest, so no email sits in Redis in clear."""
    return "twig:lockout:" + keyed_digest(normalize_email(email))[:40]


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def now_ms() -> int:
    return int(clock.now().timestamp() * 1000)


def is_locked(email: str) -> int:
    """Return the seconds left on a lock of ``email`` (0 when it is not locked)."""
    now = now_ms()
    until = get_store().locked_until_ms(identity_key(email), now)
    return retry_seconds(until, now) if until else 0
