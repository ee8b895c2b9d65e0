"""System checks for MFA wiring: twig_auth.E005 (django-otp apps) and twig_auth.E006 (enforcement middleware)."""

from __future__ import annotations

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from twig_auth.checks import MFA_MIDDLEWARE, OTP_APPS, check_settings

AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"


def by_id(messages, check_id: str) -> list[checks.CheckMessage]:
    return [m for m in messages if m.id == check_id]


@pytest.fixture
def debug(settings):
    settings.DEBUG = True  # W002 (no Redis in production) is not what these tests are about
    return settings


def test_the_shipped_settings_have_the_otp_apps_and_the_middleware_after_authentication(debug):
    assert set(OTP_APPS) <= set(debug.INSTALLED_APPS)
    assert debug.MIDDLEWARE.index(MFA_MIDDLEWARE) > debug.MIDDLEWARE.index(AUTH)
    assert not by_id(check_settings(), "twig_auth.E005") and not by_id(check_settings(), "twig_auth.E006")


@pytest.mark.parametrize("missing", OTP_APPS)
def test_a_missing_django_otp_app_is_e005_naming_it(debug, missing):
    debug.INSTALLED_APPS = [app for app in debug.INSTALLED_APPS if app != missing]
    [message] = by_id(check_settings(), "twig_auth.E005")
    assert message.level == checks.ERROR
    assert missing in message.msg and "INSTALLED_APPS" in message.msg
    assert "docs/mfa.md" in message.hint


def test_all_otp_apps_missing_are_named_in_one_e005(debug):
    debug.INSTALLED_APPS = [app for app in debug.INSTALLED_APPS if not app.startswith("django_otp")]
    [message] = by_id(check_settings(), "twig_auth.E005")
    assert all(app in message.msg for app in OTP_APPS)


def test_missing_enforcement_middleware_is_e006(debug):
    debug.MIDDLEWARE = [m for m in debug.MIDDLEWARE if m != MFA_MIDDLEWARE]
    [message] = by_id(check_settings(), "twig_auth.E006")
    assert message.level == checks.ERROR and MFA_MIDDLEWARE in message.hint
    assert "after AuthenticationMiddleware" in message.hint


def test_enforcement_middleware_before_authentication_is_e006(debug):
    rest = [m for m in debug.MIDDLEWARE if m != MFA_MIDDLEWARE]
    debug.MIDDLEWARE = [MFA_MIDDLEWARE, *rest]
    assert by_id(check_settings(), "twig_auth.E006")
    debug.MIDDLEWARE = [*rest, MFA_MIDDLEWARE]  # last is fine: after authentication
    assert not by_id(check_settings(), "twig_auth.E006")


def test_manage_py_check_fails_on_e006(debug):
    debug.MIDDLEWARE = [m for m in debug.MIDDLEWARE if m != MFA_MIDDLEWARE]
    with pytest.raises(SystemCheckError, match=r"twig_auth\.E006"):
        call_command("check")
