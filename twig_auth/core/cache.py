"""Cache calls that survive a Redis outage: the call, or a fallback, and the outage breaker told either way.

``attempt(where, fn, *args)`` runs one cache operation unless the breaker (:mod:`twig_auth.core.outage`) is
backing off, and returns :data:`UNAVAILABLE` instead of raising when it was skipped or failed; the caller
then takes its database or per-process path. ``safe`` is the same with a plain fallback value.

Why :func:`strict`: with django-redis' ``IGNORE_EXCEPTIONS`` a failed ``cache.get`` returns None, which for a
read where *absence means valid* (a token family's revocation marker, an API key's tombstone) would accept
what was revoked, and a failed ``set`` of such a marker would vanish without the breaker knowing. The
client object behind a django-redis cache (``cache.client``) has the same methods and always raises, so
every call here goes through it. Other backends (local memory, database) are used as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from twig_auth.core import outage

T = TypeVar("T")


class _Unavailable:
    """The answer of a cache call that was skipped or failed (falsy, so ``or`` fallbacks read naturally)."""

    _instance: _Unavailable | None = None

    def __new__(cls) -> _Unavailable:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE: Final = _Unavailable()


def _errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [OSError]  # socket errors, ConnectionRefusedError, socket.timeout
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover  (redis is an optional extra)
        pass
    else:
        found += [RedisConnectionError, RedisTimeoutError]
    try:
        from django_redis.exceptions import ConnectionInterrupted
    except ImportError:  # pragma: no cover
        pass
    else:
        found.append(ConnectionInterrupted)
    return tuple(found)


REDIS_ERRORS: Final = _errors()


def strict(cache: Any) -> Any:
    """Return the object to call for ``cache``: the raising client of a django-redis cache, else the cache."""
    client = getattr(cache, "client", None)
    if client is not None and type(cache).__module__.startswith("django_redis"):
        return client
    return cache


def attempt(where: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | _Unavailable:
    """Run ``fn(*args, **kwargs)`` unless Redis is known to be down; :data:`UNAVAILABLE` when skipped or failed.

    ``where`` names the call site in the one warning an outage logs (never put data or secrets in it).
    """
    if not outage.redis_available():
        return UNAVAILABLE
    try:
        result = fn(*args, **kwargs)
    except REDIS_ERRORS:
        outage.report_failure(where)
        return UNAVAILABLE
    if outage.report_success():  # this call ended an outage: the recovery hooks ran after it; do it again
        return attempt(where, fn, *args, **kwargs)
    return result


def safe(where: str, fn: Callable[..., T], *args: Any, fallback: Any = None, **kwargs: Any) -> Any:
    """Like :func:`attempt`, returning ``fallback`` instead of :data:`UNAVAILABLE`."""
    result = attempt(where, fn, *args, **kwargs)
    return fallback if result is UNAVAILABLE else result
