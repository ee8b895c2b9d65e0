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
