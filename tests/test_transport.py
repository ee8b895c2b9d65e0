"""Transport: the reference project's production settings are HTTPS only and pass ``check --deploy``.

The settings module is imported in a child process with ``TWIG_PRODUCTION=1`` (the switch the README
documents), so the test sees exactly what a deployment gets, not this process's test settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "TWIG_PRODUCTION": "1",
    "DJANGO_SECRET_KEY": "k9" + "Zq8_x-Lm3vT!pR7wYb2" * 4,  # long and varied, as check --deploy wants
    "DJANGO_ALLOWED_HOSTS": "twig.example.com",
    # Production runs on Redis (twig_auth.W002 warns otherwise); the check reads settings, it connects to nothing.
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "TWIG_VAULT_KEYS": "1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
}


# What this test process may carry that a deployment must not: the browser tests set DJANGO_ALLOW_ASYNC_UNSAFE.
NOT_INHERITED = ("DJANGO_DEBUG", "DJANGO_SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE")


def run(*args: str, **overrides: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="twig_project.settings")
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_production_settings_are_https_only():
    probe = ("import json, django; from django.conf import settings as s; django.setup(); print(json.dumps("
             "[s.DEBUG, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, "
             "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD]))")
    done = run("-c", probe)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, True, 31536000, True, True, True, True]


def test_manage_py_check_deploy_passes_with_production_settings():
    done = run("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_production_refuses_to_start_without_a_secret_key():
    done = run("manage.py", "check", "--deploy", DJANGO_SECRET_KEY=None)
    assert done.returncode != 0
    assert "needs DJANGO_SECRET_KEY" in done.stdout + done.stderr


def test_production_refuses_to_start_without_vault_keys():
    done = run("manage.py", "check", "--deploy", TWIG_VAULT_KEYS=None)
    assert done.returncode != 0
    assert "needs TWIG_VAULT_KEYS" in done.stdout + done.stderr


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
                   SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)
def test_http_redirects_to_https_and_https_answers_carry_hsts():
    client = Client()
    plain = client.get("/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/login/"
    secure = client.get("/login/", secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000; includeSubDomains")
    assert secure.cookies["csrftoken"]["secure"] is True
