"""Settings of the gunicorn server that ``bench/bench_http.py`` starts: ``bench.settings`` served for real.

``DEBUG`` off, loopback only, the bench URLconf. ``bench/bench_http.py`` passes the database the run
created (``BENCH_DB_NAME``; SQLite uses ``BENCH_SQLITE_PATH`` as ``bench.settings`` does) and the cache to
use (``BENCH_HTTP_CACHE``: ``locmem``, the embedded default, or ``redis``, which needs ``REDIS_URL``).
"""

from __future__ import annotations

import os

from bench.settings import *  # noqa: F403
from bench.settings import CACHES, DATABASES, REST_FRAMEWORK, TWIG_AUTH

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "bench.urls"

if os.environ.get("BENCH_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["BENCH_DB_NAME"]
# Persistent connections on every backend (the PostgreSQL settings already use 60 s): without them SQLite
# would open a connection per request, which only the database-bound peer would pay.
DATABASES["default"]["CONN_MAX_AGE"] = 60

# The throttled views of bench/urls.py (bench_ratelimit_http): limits no measurement reaches, so every answer
# is a 200 that went through the throttle. DRF's limit is per second: its sliding log keeps one timestamp per
# request of the window in the cached list, so a one-minute window at ~1,000 rps would pickle 60,000 floats
# per request; a one-second window holds about as many as the contract's read rate (200/min) would.
TWIG_AUTH = {**TWIG_AUTH, "RATE_LIMITS": {**TWIG_AUTH.get("RATE_LIMITS", {}), "read": "1000000/m"}}
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
    **REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), "read": "1000000/s"}}

if os.environ.get("BENCH_HTTP_CACHE", "locmem") == "locmem":
    CACHES = {**CACHES, "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
elif not os.environ.get("REDIS_URL"):
    raise RuntimeError("BENCH_HTTP_CACHE=redis needs REDIS_URL")
