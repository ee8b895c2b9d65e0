"""Access to the Redis server behind the configured django-redis cache, if there is one."""

from __future__ import annotations

from typing import Any

from django.conf import settings

REDIS_BACKENDS = ("django_redis.cache.RedisCache",)


def redis_configured() -> bool:
    """Return True when ``TWIG_AUTH["REDIS_CACHE_ALIAS"]`` names a django-redis cache."""
    from twig_auth.conf import app_settings

    cache = settings.CACHES.get(app_settings.REDIS_CACHE_ALIAS, {})
    return cache.get("BACKEND") in REDIS_BACKENDS


def get_redis() -> Any:
    """Return the raw redis-py client of that cache."""
    from django_redis import get_redis_connection

    from twig_auth.conf import app_settings

    return get_redis_connection(app_settings.REDIS_CACHE_ALIAS)
