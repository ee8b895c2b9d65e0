"""The token bucket: one atomic Lua script on the Redis server clock, and a per-process fallback.

A bucket holds ``limit`` tokens and refills continuously at ``limit`` per ``period`` seconds; a request
takes one token or is refused. The pitfalls other limiters shipped, and how this one avoids them:

* **Client clocks** — the script reads ``redis.call('TIME')``; application clocks never enter the maths,
  so skewed app servers cannot over-issue tokens.
* **Starvation** — state is written only when a token is taken. A refused call changes nothing, so a
  client polling faster than the refill still accrues the fractional tokens and eventually gets one.
* **Lost tokens / early refill** — the stored time is that of the last take, with the fractional tokens
  left at that time; the key's TTL is exactly the time to refill fully, so an expired (idle) bucket is
  one that would be full anyway.
* **Idle credit** — tokens are capped at ``limit``.
* **Divide by zero** — :class:`~twig_auth.ratelimit.rates.Rate` refuses a zero limit or period.

Results carry ``reset_at`` (Unix seconds when the bucket is full again, ``X-RateLimit-Reset``) and
``retry_after`` (seconds until the next token when refused, ``Retry-After``; 0 when allowed).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twig_auth.core.redis import get_redis, redis_configured
from twig_auth.ratelimit.rates import Rate

logger = logging.getLogger(__name__)

KEY_PREFIX = "twig:rl:"


@dataclass(frozen=True)
class BucketResult:
    """The answer of one take: whether it was admitted and the values of the rate-limit headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        """Return ``X-RateLimit-*`` headers, and ``Retry-After`` when refused."""
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(self.reset_at)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


def bucket_key(principal: str, scope: str) -> str:
    """Return the Redis key of a principal's bucket; the braces keep one principal's buckets in one slot."""
    return f"{KEY_PREFIX}{{{principal}}}:{scope}"


def _result(allowed: bool, rate: Rate, tokens: float, now_ms: float, cost: int) -> BucketResult:
    """Build the result from the tokens left after the take (or found, when refused)."""
    per_ms = rate.limit / (rate.period * 1000)
    full_ms = now_ms + (rate.limit - tokens) / per_ms
    retry = 0 if allowed else max(1, math.ceil((cost - tokens) / per_ms / 1000))
    return BucketResult(allowed, rate.limit, max(0, math.floor(tokens + 1e-9)), math.ceil(full_ms / 1000 - 1e-9),
                        retry)


# KEYS[1] = hash {t = tokens left (fractional), ts = server ms of the last take}
# ARGV = limit, period_ms, cost  ->  {allowed, tokens (as %.17g string), now_ms (string)}
_TAKE = """
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local h = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = tonumber(h[1]), tonumber(h[2])
if tokens == nil or ts == nil then
  tokens, ts = limit, now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(limit, tokens + elapsed * limit / period)
local allowed = 0
if tokens >= cost then
  allowed = 1
  tokens = tokens - cost
  local ttl = math.ceil((limit - tokens) * period / limit)
  if ttl < 1 then ttl = 1 end
  redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {allowed, string.format('%.17g', tokens), string.format('%.17g', now)}
"""


class RedisBucket:
    """Token buckets in Redis hashes, changed only by one Lua script: exact across processes and machines."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._take = client.register_script(_TAKE)

    def take(self, key: str, rate: Rate, cost: int = 1) -> BucketResult:
        _check_cost(rate, cost)
        allowed, tokens, now_ms = self._take(keys=[key], args=[rate.limit, rate.period * 1000, cost])
        return _result(bool(int(allowed)), rate, float(tokens), float(now_ms), cost)


class LocalBucket:
    """The same maths in this process only, under a lock: the fallback when Redis is absent or failing.

    ``monotonic`` drives refill (never jumps); ``wall`` only turns the full-again moment into Unix time.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.monotonic = monotonic
        self.wall = wall
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float, float]] = {}  # key -> (tokens, last take s, full again s)

    def take(self, key: str, rate: Rate, cost: int = 1) -> BucketResult:
        _check_cost(rate, cost)
        with self._lock:
            now = self.monotonic()
            tokens, last, _full = self._state.get(key, (float(rate.limit), now, now))
            tokens = min(float(rate.limit), tokens + max(0.0, now - last) * rate.limit / rate.period)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
                full = now + (rate.limit - tokens) * rate.period / rate.limit
                self._state[key] = (tokens, now, full)
                if len(self._state) > self.MAX_ENTRIES:
                    self._evict(now)
            offset_ms = (self.wall() - now) * 1000
        return _result(allowed, rate, tokens, now * 1000 + offset_ms, cost)

    def _evict(self, now: float) -> None:
        """Drop buckets that are full again (the local twin of the Redis TTL)."""
        for key in [k for k, (_t, _l, full) in self._state.items() if full <= now]:
            del self._state[key]

    def clear(self) -> None:
        with self._lock:
            self._state.clear()


def _check_cost(rate: Rate, cost: int) -> None:
    if not 1 <= cost <= rate.limit:
        raise ValueError(f"cost must be between 1 and the bucket's limit {rate.limit}, got {cost}")


_local = LocalBucket()
_redis_bucket: tuple[Any, RedisBucket] | None = None
_warned = False
_guard = threading.Lock()


def _redis() -> RedisBucket:
    global _redis_bucket
    client = get_redis()
    cached = _redis_bucket
    if cached is None or cached[0] is not client:
        cached = _redis_bucket = (client, RedisBucket(client))
    return cached[1]


def take(key: str, rate: Rate, cost: int = 1) -> BucketResult:
    """Take ``cost`` tokens from the bucket ``key``: in Redis when configured, else in this process.

    Never raises because of Redis: on any Redis error the per-process bucket answers and one warning is
    logged (again only after Redis has worked in between).
    """
    global _warned
    _check_cost(rate, cost)
    if redis_configured():
        try:
            result = _redis().take(key, rate, cost)
        except Exception:  # any client, connection or script error: limiting must not break the request
            with _guard:
                first, _warned = not _warned, True
            if first:
                logger.warning("Redis rate limiting failed; using the per-process bucket (limits are now "
                               "per process, not global)", exc_info=True)
        else:
            _warned = False
            return result
    return _local.take(key, rate, cost)


def reset_local() -> None:
    """Forget the per-process buckets and the warning state (tests)."""
    global _warned, _redis_bucket
    _local.clear()
    _warned = False
    _redis_bucket = None
