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

import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twig_auth.core import outage
from twig_auth.core.redis import get_redis, redis_configured
from twig_auth.ratelimit.rates import Rate

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
    retry = 0 if allowed else max(1, math.ceil((cost - tokens) / per_ms / 1000 - 1e-9))
    return BucketResult(allowed, rate.limit, max(0, math.floor(tokens + 1e-9)), math.ceil(full_ms / 1000 - 1e-9),
                        retry)


# One script for every take. KEYS = [gate?, bucket, bucket, ...]; ARGV = [gate mode, negative, cost,
# limit1, period_ms1, limit2, period_ms2, ...]. Each bucket is a hash {t = tokens left (fractional),
# ts = server ms of the last take}. With a gate, KEYS[1] is a cache entry read in the same call:
# mode "1" (the API-key check) takes only when the entry is present and not ``negative``; mode "2" (an
# access token's revocation marker) takes only when the entry is absent.
# Returns {gate value or false, taken (-1 not tried, 0 refused, 1 admitted), now_ms, tokens1, tokens2, ...}
# where each tokens value is what is left after the take (admitted) or what was there (refused).
_TAKE = """
local mode = ARGV[1]
local cost = tonumber(ARGV[3])
local first = 1
local gate = false
if mode ~= '0' then
  first = 2
  gate = redis.call('GET', KEYS[1])
  if mode == '1' and ((not gate) or gate == ARGV[2]) then
    return {gate, -1, '0'}
  end
  if mode == '2' and gate then
    return {gate, -1, '0'}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tokens = {}
local allowed = 1
for i = first, #KEYS do
  local j = (i - first) * 2 + 4
  local limit, period = tonumber(ARGV[j]), tonumber(ARGV[j + 1])
  local h = redis.call('HMGET', KEYS[i], 't', 'ts')
  local left, ts = tonumber(h[1]), tonumber(h[2])
  if left == nil or ts == nil then
    left, ts = limit, now
  end
  local elapsed = now - ts
  if elapsed < 0 then elapsed = 0 end
  left = math.min(limit, left + elapsed * limit / period)
  if left < cost then allowed = 0 end
  tokens[#tokens + 1] = left
end
local out = {gate, allowed, string.format('%.17g', now)}
for i = first, #KEYS do
  local k = i - first + 1
  local left = tokens[k]
  if allowed == 1 then
    local j = (k - 1) * 2 + 4
    local limit, period = tonumber(ARGV[j]), tonumber(ARGV[j + 1])
    left = left - cost
    local ttl = math.ceil((limit - left) * period / limit)
    if ttl < 1 then ttl = 1 end
    redis.call('HSET', KEYS[i], 't', string.format('%.17g', left), 'ts', string.format('%.17g', now))
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  out[#out + 1] = string.format('%.17g', left)
end
return out
"""

Items = Sequence[tuple[str, Rate]]


def _results(allowed: bool, items: Items, tokens: Sequence[float], now_ms: float, cost: int) -> BucketResult:
    """The result whose headers describe the request: when refused, the empty bucket that frees up last;
    when admitted, the bucket with the fewest tokens left (then the smallest one)."""
    per_bucket = [_result(allowed or left >= cost, rate, left, now_ms, cost)
                  for (_key, rate), left in zip(items, tokens, strict=True)]
    return binding(per_bucket)


def binding(results: Sequence[BucketResult]) -> BucketResult:
    """Of the results of one request's buckets, the one whose headers it carries: when any refused, the one
    that frees up last; else the one with the fewest tokens left (then the smallest bucket)."""
    refused = [r for r in results if not r.allowed]
    if refused:
        return max(refused, key=lambda r: r.retry_after)
    return min(results, key=lambda r: (r.remaining, r.limit))


def _reply_result(reply: Sequence[Any], items: Items, cost: int) -> BucketResult:
    """The result of the script's reply ``{gate, taken, now_ms, tokens...}``."""
    return _results(bool(int(reply[1])), items, [float(t) for t in reply[3:]], float(reply[2]), cost)


def _args(items: Items, cost: int) -> list[Any]:
    args: list[Any] = []
    for _key, rate in items:
        _check_cost(rate, cost)
        args += [rate.limit, rate.period * 1000]
    return args


class RedisBucket:
    """Token buckets in Redis hashes, changed only by one Lua script: exact across processes and machines."""

    def __init__(self, client: Any) -> None:
        from redis.exceptions import NoScriptError  # redis is an optional extra: imported only when used

        self.client = client
        self._no_script = NoScriptError
        self.sha = hashlib.sha1(_TAKE.encode()).hexdigest()  # noqa: S324  (Redis names scripts by SHA-1)

    def _run(self, keys: list[str], args: list[Any]) -> Any:
        """``EVALSHA`` sent as a raw command (redis-py's ``Script`` wrapper inspects its arguments on every
        call, which cost more than the script itself); a server that does not know the script yet, or lost
        it in a restart, gets it once with ``SCRIPT LOAD``."""
        try:
            return self.client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except self._no_script:
            self.client.execute_command("SCRIPT LOAD", _TAKE)
            return self.client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    def take(self, key: str, rate: Rate, cost: int = 1) -> BucketResult:
        return self.take_all([(key, rate)], cost)

    def take_all(self, items: Items, cost: int = 1) -> BucketResult:
        """Take ``cost`` tokens from every bucket, or from none: admitted only when each has enough."""
        if not items:
            raise ValueError("take_all needs at least one bucket")
        reply = self._run([k for k, _r in items], ["0", "", cost, *_args(items, cost)])
        return _reply_result(reply, items, cost)

    def take_gated(self, gate: str, negative: bytes, items: Items, cost: int = 1, *,
                   when: str = "present") -> tuple[bytes | None, BucketResult | None]:
        """Read the cache entry ``gate`` and take from the buckets only when ``when`` holds: ``"present"``
        (and not ``negative``: an API-key check and its rate limit in one round trip) or ``"absent"`` (a
        token family's revocation marker and the member's bucket in one round trip). Returns (raw entry,
        result), the result ``None`` when nothing was taken."""
        if not items:
            raise ValueError("take_gated needs at least one bucket")
        mode = {"present": "1", "absent": "2"}[when]
        reply = self._run([gate, *(k for k, _r in items)], [mode, negative, cost, *_args(items, cost)])
        raw = reply[0] or None
        if int(reply[1]) < 0:
            return raw, None
        return raw, _reply_result(reply, items, cost)


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
        return self.take_all([(key, rate)], cost)

    def take_all(self, items: Items, cost: int = 1) -> BucketResult:
        if not items:
            raise ValueError("take_all needs at least one bucket")
        for _key, rate in items:
            _check_cost(rate, cost)
        with self._lock:
            now = self.monotonic()
            tokens = []
            for key, rate in items:
                left, last, _full = self._state.get(key, (float(rate.limit), now, now))
                tokens.append(min(float(rate.limit), left + max(0.0, now - last) * rate.limit / rate.period))
            allowed = all(left >= cost for left in tokens)
            if allowed:
                tokens = [left - cost for left in tokens]
                for (key, rate), left in zip(items, tokens, strict=True):
                    self._state[key] = (left, now, now + (rate.limit - left) * rate.period / rate.limit)
                if len(self._state) > self.MAX_ENTRIES:
                    self._evict(now)
            offset_ms = (self.wall() - now) * 1000
        return _results(allowed, items, tokens, now * 1000 + offset_ms, cost)

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


def _redis() -> RedisBucket:
    global _redis_bucket
    client = get_redis()
    cached = _redis_bucket
    if cached is None or cached[0] is not client:
        cached = _redis_bucket = (client, RedisBucket(client))
    return cached[1]


def redis_in_use() -> bool:
    """True when buckets live in Redis right now: configured, and not backing off after a failure."""
    return redis_configured() and outage.redis_available()


def take(key: str, rate: Rate, cost: int = 1) -> BucketResult:
    """Take ``cost`` tokens from the bucket ``key``; see :func:`take_all`."""
    return take_all([(key, rate)], cost)


def take_all(items: Items, cost: int = 1) -> BucketResult:
    """Take ``cost`` tokens from every bucket in ``items`` or from none, in one Redis round trip when Redis
    is configured, else in this process. Returns the result whose headers the answer should carry.

    Never raises because of Redis: on a Redis error the per-process bucket answers, the outage circuit
    (:mod:`twig_auth.core.outage`) logs one warning and skips Redis while it backs off.
    """
    if redis_in_use():
        try:
            result = _redis().take_all(items, cost)
        except ValueError:
            raise
        except Exception:  # any client, connection or script error: limiting must not break the request
            outage.report_failure("rate limiting (now per process, not global)")
        else:
            outage.report_success()
            return result
    return _local.take_all(items, cost)


def take_gated(gate: str, negative: bytes, items: Items, cost: int = 1, *,
               when: str = "present") -> tuple[bytes | None, BucketResult | None]:
    """:meth:`RedisBucket.take_gated` on the configured Redis. Raises on a Redis error (the caller reports
    it to :mod:`twig_auth.core.outage` and takes its fallback path)."""
    return _redis().take_gated(gate, negative, items, cost, when=when)


def reset_local() -> None:
    """Forget the per-process buckets (tests)."""
    global _redis_bucket
    _local.clear()
    _redis_bucket = None
