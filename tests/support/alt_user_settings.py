"""The reference settings with Django's stock ``auth.User`` instead of the email-as-username model.

Used by ``tests/test_other_user_model.py`` in a subprocess: AUTH_USER_MODEL cannot change inside one
process, and twig_auth promises to work with any user model that has an email field.
"""

import os

from twig_project.settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "twig_project.users"]  # noqa: F405
AUTH_USER_MODEL = "auth.User"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["ALT_DB_PATH"]}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
MIGRATION_MODULES = {"users": None}
