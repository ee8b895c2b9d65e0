"""A per-process circuit breaker for Redis, so that a dead Redis costs one warning, not a 500 per request.

When a Redis call fails, :func:`report_failure` *opens* the breaker: for a backoff (1 s, doubling up to
30 s) :func:`redis_available` answers False and callers go straight to their fallback (database,
per-process state) instead of paying a connect timeout on every request. When the backoff has passed,
exactly one caller is let through to try Redis again (*half-open*); its :func:`report_success` closes
the breaker, its :func:`report_failure` opens it again for twice as long.

Why recovery hooks: while Redis was unreachable, revocations committed to the database could not delete
the cached "valid" entries (API-key verifications, sessions) nor set the revocation markers (token
families). Those stale entries would become visible again the moment Redis answers. :func:`on_recovery`
registers functions that re-apply everything changed since the outage began; they run once, on the
first success, with the Unix time the outage started. They must be idempotent: if one of them fails
the breaker re-opens *as the same outage* (same start time) and all hooks run again on the next success.

The state is per process (and thread safe): another process learns of the outage by its own failure.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
RECOVERY_MARGIN_SECONDS = 60  # clock skew between app servers and the database, transactions in flight

RecoveryHook = Callable[[float], None]


class Breaker:
    """The breaker's state machine; ``monotonic`` drives the backoff, ``wall`` dates the outage start."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.monotonic = monotonic
        self.wall = wall
        self._lock = threading.Lock()
        self._hooks: list[RecoveryHook] = []
        self._open = False  # read without the lock on the hot path: a stale read only delays by one call
        self._started = 0.0  # wall time the outage began
        self._backoff = 0.0
        self._retry_at = 0.0  # monotonic time from which one probe may try Redis

    # -- queries ---------------------------------------------------------------------------------------

    def available(self) -> bool:
        """Return True when Redis may be tried: closed, or this caller is the half-open probe."""
        if not self._open:
            return True
        with self._lock:
            if not self._open:
                return True
            now = self.monotonic()
            if now < self._retry_at:
                return False
            # This caller probes. Until it reports, the others keep using the fallback; should it never
            # report (an exception nobody caught), another probe is allowed after one more backoff.
            self._retry_at = now + self._backoff
            return True

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def outage_started(self) -> float | None:
        """Wall time the current outage began, or None when Redis is considered reachable."""
        return self._started if self._open else None

    # -- reports ---------------------------------------------------------------------------------------

    def failure(self, where: str) -> None:
        """Open the breaker (first failure: one warning) or extend it with a doubled backoff."""
        with self._lock:
            now = self.monotonic()
            if self._open:
                self._backoff = min(MAX_BACKOFF, self._backoff * 2)
                self._retry_at = now + self._backoff
                return
            self._open = True
            self._started = self.wall()
            self._backoff = FIRST_BACKOFF
            self._retry_at = now + self._backoff
        # No exception text: a connection error may carry the URL, and the URL may carry the password.
        logger.warning("Redis is unavailable (first failure in %s); serving from the database and "
                       "per-process fallbacks until it answers again", where)

    def success(self) -> bool:
        """Close the breaker; after an outage run the recovery hooks once with the outage's start time.

        Return True when this call ended an outage: what the caller just read from Redis predates the hooks
        and may be stale, so it should read again (or use its fallback if a hook failed and reopened).
        """
        if not self._open:
            return False
        with self._lock:
            if not self._open:
                return False
            started = self._started
            backoff = self._backoff
            self._open = False
            hooks = list(self._hooks)
        for hook in hooks:
            try:
                hook(started)
            except Exception:  # noqa: BLE001  (a failed re-apply must be retried, not lost or raised)
                self._reopen(started, backoff, getattr(hook, "__qualname__", repr(hook)))
                return True
        logger.info("Redis is reachable again; changes made since the outage began were re-applied")
        return True

    def _reopen(self, started: float, backoff: float, hook_name: str) -> None:
        """Continue the same outage after a recovery hook failed, so its changes are re-applied later."""
        with self._lock:
            if self._open:  # someone else already reopened: keep the earliest start
                self._started = min(self._started, started)
                return
            self._open = True
            self._started = started
            self._backoff = min(MAX_BACKOFF, max(FIRST_BACKOFF, backoff * 2))
            self._retry_at = self.monotonic() + self._backoff
        logger.info("Redis recovery hook %s failed; the outage continues and will be re-applied", hook_name)

    def add_hook(self, fn: RecoveryHook) -> None:
        with self._lock:
            if fn not in self._hooks:
                self._hooks.append(fn)

    def reset(self) -> None:
        """Close without running hooks (tests)."""
        with self._lock:
            self._open = False
            self._started = self._backoff = self._retry_at = 0.0


_breaker = Breaker()


def redis_available() -> bool:
    """False while backing off after a failure (1 s doubling to 30 s); then one caller may probe."""
    return _breaker.available()


def report_failure(where: str) -> None:
    """Record a failed Redis call made in ``where`` (a short code location, never data or secrets)."""
    _breaker.failure(where)


def report_success() -> bool:
    """Record a Redis call that worked; cheap when no outage is in progress. True when it ended an outage
    (the recovery hooks ran after the caller's read: read again)."""
    return _breaker.success()


def on_recovery(fn: RecoveryHook) -> None:
    """Register ``fn(outage_started_unix)`` to run on the first success after each outage (idempotent)."""
    _breaker.add_hook(fn)


def outage_started() -> float | None:
    """Wall time the current outage began in this process, or None."""
    return _breaker.outage_started


def changed_since(started: float) -> dt.datetime:
    """The moment from which a recovery hook re-applies changes: the outage start, less a safety margin."""
    return dt.datetime.fromtimestamp(started - RECOVERY_MARGIN_SECONDS, tz=dt.UTC)


def reset() -> None:
    """Forget any outage in this process without running hooks (tests)."""
    _breaker.reset()
