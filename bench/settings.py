"""Settings of the benchmark run: the reference project plus django-axes, the lockout peer.

django-axes is installed as an app (its models and signal receivers) but not wired into the
middleware or the authentication backends: each benchmark switches ``AUTHENTICATION_BACKENDS`` with
``override_settings`` for the peer it measures. The SQLite database is a throwaway file chosen by
``bench/run.py`` (``BENCH_SQLITE_PATH``), never the project's or the test suite's database.
"""

from __future__ import annotations

import datetime as dt
import os

from twig_project.settings import *  # noqa: F403
from twig_project.settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "axes"]

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
