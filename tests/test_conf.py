"""The TWIG_AUTH settings object and its system checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core import checks

from twig_auth.checks import check_settings
from twig_auth.conf import SETTINGS, app_settings, settings_reference_markdown


def ids(messages) -> set[str]:
    return {m.id for m in messages}


def test_defaults_apply_when_unset(settings):
    settings.TWIG_AUTH = {}
    assert app_settings.API_MODE == "live"
    assert app_settings.LOCKOUT_MAX_ATTEMPTS == 5 and app_settings.LOCKOUT_LOCK_SECONDS == 900


def test_overrides_are_read_lazily_and_reload_on_change(settings):
    settings.TWIG_AUTH = {"API_MODE": "test"}
    assert app_settings.API_MODE == "test"
    settings.TWIG_AUTH = {"API_MODE": "live"}
    assert app_settings.API_MODE == "live"


@pytest.fixture
def debug(settings):
    settings.DEBUG = True  # W002 (no Redis in production) is tested on its own below
    return settings


def test_the_shipped_configuration_passes_every_check(debug):
    assert check_settings() == []


def test_invalid_values_fail_with_e001_naming_the_setting(debug, settings):
    settings.TWIG_AUTH = {"VAULT_KEYS": settings.TWIG_AUTH["VAULT_KEYS"], "API_MODE": "staging",
                          "LOCKOUT_MAX_ATTEMPTS": 0, "LOGIN_IP_RATE": "lots", "TIMEZONE": "Nowhere/Land",
                          "CLOCK": "no.such.module.now"}
    messages = check_settings()
    assert ids(messages) == {"twig_auth.E001"}
    text = " ".join(m.msg for m in messages)
    for name in ("API_MODE", "LOCKOUT_MAX_ATTEMPTS", "LOGIN_IP_RATE", "TIMEZONE", "CLOCK"):
        assert name in text
    assert all(m.level == checks.ERROR for m in messages)


def test_unknown_keys_warn_with_w001(debug, settings):
    settings.TWIG_AUTH = {"VAULT_KEYS": settings.TWIG_AUTH["VAULT_KEYS"], "LOCKOUT_ATTEMPTS": 3}
    assert ids(check_settings()) == {"twig_auth.W001"}


def test_missing_bcrypt_and_rules_are_errors(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    settings.AUTH_PASSWORD_VALIDATORS = []
    assert {"twig_auth.E002", "twig_auth.E003"} <= ids(check_settings())


def test_production_without_redis_warns(settings):
    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert "twig_auth.W002" in ids(check_settings())


def test_every_setting_is_documented_and_the_reference_page_is_current():
    assert all(s.doc and s.doc.endswith(".") for s in SETTINGS)
    page = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
    assert page.read_text() == settings_reference_markdown(), "regenerate: python -m twig_auth.conf"
