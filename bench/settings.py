"""Settings of the benchmark run: the reference project plus the peers (django-axes, djangorestframework-api-key).

djangorestframework-api-key is installed as an app (its ``APIKey`` table) for the API key rows.
django-axes is installed as an app (its models and signal receivers) but not wired into the
middleware or the authentication backends: each benchmark switches ``AUTHENTICATION_BACKENDS`` with
``override_settings`` for the peer it measures. The SQLite database is a throwaway file chosen by
``bench/run.py`` (``BENCH_SQLITE_PATH``), never the project's or the test suite's database.
"""

from __future__ import annotations

import datetime as dt
import os

from twig_project.settings import *  # noqa: F403
from twig_project.settings import CACHES, DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "axes", "rest_framework_api_key"]

# The embedded default cache, always present under its own alias: the in-process API key rows measure
# verification against it even when REDIS_URL makes the default cache Redis.
CACHES = {**CACHES, "bench-locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                     "LOCATION": "twig-bench"}}

# Production-like: with DEBUG on, every SQL query is timed and logged, which slows the database-bound
# peers (and fills the query log CaptureQueriesContext reads).
DEBUG = False

_sqlite_path = os.environ.get("BENCH_SQLITE_PATH")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and _sqlite_path:
    DATABASES["default"]["NAME"] = _sqlite_path
    DATABASES["default"]["TEST"] = {"NAME": _sqlite_path}

AXES_ENABLED = True
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = dt.timedelta(minutes=15)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes reads the login name from the credential named after USERNAME_FIELD ("email" here) unless told
# otherwise; the benchmark calls authenticate(username=...), as Django's login forms do.
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False

# Benchmarks print a table; keep log lines (axes warns on every failed login) out of it.
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"null": {"class": "logging.NullHandler"}},
           "root": {"handlers": ["null"], "level": "CRITICAL"}}
