"""Code run in child processes by the race test (importable under the spawn start method)."""

from __future__ import annotations

from typing import Any


def hammer(url: str, key: str, limit: int, period: int, count: int, ready: Any, start: Any, out: Any) -> None:
    """Open this process's own Redis connection, wait for the start signal, then take ``count`` times."""
    import redis

    from twig_auth.ratelimit.bucket import RedisBucket
    from twig_auth.ratelimit.rates import Rate

    bucket = RedisBucket(redis.Redis.from_url(url))
    bucket.client.ping()
    rate = Rate(limit, period)
    ready.put(True)
    start.wait(30)
    out.put(sum(bucket.take(key, rate).allowed for _ in range(count)))


def hammer_gated(url: str, gate: str, key: str, limit: int, period: int, count: int, ready: Any, start: Any,
                 out: Any) -> None:
    """Like :func:`hammer`, through the gated script (the API-key check and the bucket in one call)."""
    import redis

    from twig_auth.ratelimit.bucket import RedisBucket
    from twig_auth.ratelimit.rates import Rate

    bucket = RedisBucket(redis.Redis.from_url(url))
    bucket.client.ping()
    rate = Rate(limit, period)
    ready.put(True)
    start.wait(30)
    taken = 0
    for _ in range(count):
        _raw, result = bucket.take_gated(gate, b"NEG", [(key, rate)])
        taken += bool(result and result.allowed)
    out.put(taken)
