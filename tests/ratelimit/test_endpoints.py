"""Throttles of sign-in, token, second-factor and password-reset endpoints: per IP and per account, exact
``X-RateLimit-*`` headers on every answer to a POST, a friendly wait message, and no work once refused.

Rates are hourly ("3/h"): a token takes 20 minutes to come back, so refill never changes a count mid-test.
Buckets live in Redis on the Redis-backed run (the suite's autouse fixture flushes the test database and the
per-process buckets before each test).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from django.core import mail
from django.test import Client, RequestFactory

from tests.conftest import PASSWORD, oathtool
from twig_auth.audit.models import AuditEvent
from twig_auth.conf import SETTINGS
from twig_auth.core.redis import get_redis, redis_configured
from twig_auth.passwords import lockout
from twig_auth.ratelimit import bucket, endpoints

LOGIN = "/login/"
VERIFY = "/login/verify/"
STEP_UP = "/mfa/verify/"
RESET = "/password/reset/"
TOKEN = "/api/auth/token"
WRONG = "Wrong-Horse-9!"


@pytest.fixture
def rates(settings: Any) -> Any:
    def use(**values: str) -> None:
        settings.TWIG_AUTH = {**settings.TWIG_AUTH, **values}

    return use


@pytest.fixture
def ann(org: Any, make_member: Any) -> Any:
    return make_member(org, "manager", email="ann@acme.test").user


def login(client: Client, email: str, password: str = WRONG, ip: str = "127.0.0.1") -> Any:
    return client.post(LOGIN, {"email": email, "password": password}, REMOTE_ADDR=ip)


def token(client: Client, body: dict[str, Any], ip: str = "127.0.0.1") -> Any:
    return client.post(TOKEN, json.dumps(body), content_type="application/json", REMOTE_ADDR=ip)


def limit_headers(response: Any) -> tuple[int, int, int]:
    return (int(response["X-RateLimit-Limit"]), int(response["X-RateLimit-Remaining"]),
            int(response["X-RateLimit-Reset"]))


def stored_keys() -> list[str]:
    """The bucket keys written so far, wherever the buckets live in this run."""
    if redis_configured():
        return [k.decode() for k in get_redis().scan_iter(match=bucket.KEY_PREFIX + "*")]
    return list(bucket._local._state)


# --- sign-in page ---------------------------------------------------------------------------------------


def test_per_ip_limit_counts_every_email_and_headers_count_down(client: Client, db: None, rates: Any) -> None:
    rates(LOGIN_IP_RATE="3/h", LOGIN_ACCOUNT_RATE="100/h")
    before = int(time.time())
    for i in range(3):
        response = login(client, f"guess{i}@example.test")
        assert response.status_code == 200
        limit, remaining, reset = limit_headers(response)
        assert (limit, remaining) == (3, 2 - i)
        assert before < reset <= int(time.time()) + 3600 + 1  # Unix time when the bucket is full again
        assert "Retry-After" not in response

    refused = login(client, "someone-else@example.test")

    assert refused.status_code == 429
    assert limit_headers(refused)[:2] == (3, 0)
    assert 1100 <= int(refused["Retry-After"]) <= 1200
    assert "Too many sign-in attempts. Try again in 20 minutes." in refused.content.decode()
    assert login(client, "someone-else@example.test", ip="198.51.100.7").status_code == 200, "other IPs go on"


def test_per_account_limit_counts_from_every_ip_and_ignores_case(client: Client, ann: Any, rates: Any) -> None:
    rates(LOGIN_IP_RATE="100/h", LOGIN_ACCOUNT_RATE="3/h")
    spellings = ["ann@acme.test", " ANN@acme.test ", "Ann@Acme.Test"]
    for i, email in enumerate(spellings):
        response = login(client, email, ip=f"198.51.100.{i + 1}")
        assert response.status_code == 200
        assert limit_headers(response)[:2] == (3, 2 - i)

    refused = login(client, "ann@acme.test", password=PASSWORD, ip="203.0.113.50")

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many sign-in attempts." in refused.content.decode()
    assert client.get("/").status_code == 302, "a right password is not even checked once refused"
    assert login(client, "bob@acme.test", ip="203.0.113.50").status_code == 200, "other accounts go on"


def test_a_refused_login_runs_no_password_check_and_counts_no_failure(client: Client, ann: Any, rates: Any) -> None:
    rates(LOGIN_ACCOUNT_RATE="2/h", LOCKOUT_MAX_ATTEMPTS=3)
    for _ in range(2):
        assert login(client, "ann@acme.test").status_code == 200
    assert AuditEvent.objects.filter(event="LOGIN_FAILURE").count() == 2

    for i in range(5):  # would have locked the account three times over
        assert login(client, "ann@acme.test", ip=f"198.51.100.{i + 1}").status_code == 429

    assert AuditEvent.objects.filter(event="LOGIN_FAILURE").count() == 2
    assert not AuditEvent.objects.filter(event="ACCOUNT_LOCKED").exists()
    assert lockout.is_locked("ann@acme.test") == 0


def test_every_answer_to_a_login_post_carries_the_headers(client: Client, ann: Any, rates: Any,
                                                         settings: Any) -> None:
    rates(LOGIN_IP_RATE="5/h", LOGIN_ACCOUNT_RATE="4/h", LOCKOUT_MAX_ATTEMPTS=2)
    signed_in = login(client, "ann@acme.test", password=PASSWORD)
    assert signed_in.status_code == 302
    assert limit_headers(signed_in)[:2] == (4, 3), "the account bucket binds: fewer tokens left"
    client.post("/logout/")
    for _ in range(2):
        login(client, "ann@acme.test")
    locked = login(client, "ann@acme.test")
    assert locked.status_code == 403
    assert int(locked["Retry-After"]) > 0 and limit_headers(locked)[:2] == (4, 0)


def test_showing_the_form_is_free(client: Client, db: None, rates: Any) -> None:
    rates(LOGIN_IP_RATE="1/h")
    for _ in range(5):
        page = client.get(LOGIN)
        assert page.status_code == 200 and "X-RateLimit-Limit" not in page
    assert login(client, "x@example.test").status_code == 200
    assert login(client, "x@example.test").status_code == 429


def test_one_ipv6_slash_64_is_one_client(client: Client, db: None, rates: Any) -> None:
    rates(LOGIN_IP_RATE="2/h", LOGIN_ACCOUNT_RATE="100/h")
    assert login(client, "a@example.test", ip="2001:db8:1:2::1").status_code == 200
    assert login(client, "b@example.test", ip="2001:db8:1:2:ffff::9").status_code == 200
    assert login(client, "c@example.test", ip="2001:db8:1:2:abcd::").status_code == 429, "same /64"
    assert login(client, "c@example.test", ip="2001:db8:1:3::1").status_code == 200, "next /64"


def test_keys_hold_a_digest_of_the_email_never_the_email(client: Client, db: None) -> None:
    login(client, "Secret.Person@example.test", ip="198.51.100.4")
    keys = stored_keys()
    assert len(keys) == 2
    assert not any("@" in k or "secret" in k.lower() for k in keys)
    digest = endpoints.account_principal("secret.person@example.test")
    assert bucket.bucket_key(digest, endpoints.LOGIN) in keys
    assert bucket.bucket_key("ip:198.51.100.4", endpoints.LOGIN) in keys


# --- POST /api/auth/token -------------------------------------------------------------------------------


def test_token_requests_share_the_sign_in_buckets_and_answer_429_json(client: Client, owner: Any,
                                                                      rates: Any) -> None:
    rates(LOGIN_IP_RATE="100/h", LOGIN_ACCOUNT_RATE="3/h")
    assert login(client, "owner@acme.test", ip="198.51.100.1").status_code == 200  # the page takes one too
    for i in range(2):
        response = token(client, {"email": "OWNER@acme.test", "password": WRONG}, ip=f"198.51.100.{i + 2}")
        assert response.status_code == 401 and response.json()["code"] == "invalid_credentials"
        assert limit_headers(response)[:2] == (3, 1 - i)

    refused = token(client, {"email": "owner@acme.test", "password": PASSWORD}, ip="203.0.113.9")

    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "rate_limit_exceeded"
    assert body["retry_after"] == int(refused["Retry-After"]) > 0
    assert body["detail"].startswith("Too many sign-in attempts. Try again in ")
    assert limit_headers(refused)[:2] == (3, 0)
    assert AuditEvent.objects.filter(event="LOGIN_FAILURE").count() == 1 + 2


def test_token_per_ip_limit_counts_bodies_without_an_email(client: Client, db: None, rates: Any) -> None:
    rates(LOGIN_IP_RATE="2/h")
    assert token(client, {"password": "x"}).status_code == 400
    bad = client.post(TOKEN, "{not json", content_type="application/json")
    assert bad.status_code == 400 and limit_headers(bad)[:2] == (2, 0)
    refused = token(client, {"email": "a@example.test", "password": "x"})
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limit_exceeded"


def test_token_otp_is_throttled_per_user_before_the_code_is_checked(client: Client, owner: Any, totp_device: Any,
                                                                    rates: Any) -> None:
    rates(MFA_ACCOUNT_RATE="2/h", MFA_CODE_RATE="100/h")
    _, secret = totp_device(owner.user)
    wrong = f"{(int(oathtool(secret)) + 7) % 1_000_000:06d}"
    for i in range(2):
        response = token(client, {"email": "owner@acme.test", "password": PASSWORD, "otp": wrong},
                         ip=f"198.51.100.{i + 1}")
        assert response.status_code == 401 and response.json()["code"] == "mfa_required"
        assert limit_headers(response)[:2] == (2, 1 - i)

    refused = token(client, {"email": "owner@acme.test", "password": PASSWORD, "otp": oathtool(secret)},
                    ip="203.0.113.9")

    assert refused.status_code == 429 and refused.json()["code"] == "rate_limit_exceeded"
    assert "Too many verification attempts." in refused.json()["detail"]
    assert limit_headers(refused)[:2] == (2, 0) and int(refused["Retry-After"]) > 0
    assert AuditEvent.objects.filter(event="MFA_FAILURE").count() == 2
    assert not AuditEvent.objects.filter(event="LOGIN_SUCCESS").exists()


# --- second factor pages --------------------------------------------------------------------------------


def test_login_code_page_is_throttled_per_user_from_every_ip(client: Client, ann: Any, totp_device: Any,
                                                           rates: Any) -> None:
    rates(MFA_ACCOUNT_RATE="2/h", MFA_CODE_RATE="100/h")
    _, secret = totp_device(ann)
    assert login(client, "ann@acme.test", password=PASSWORD)["Location"] == VERIFY
    for i in range(2):
        response = client.post(VERIFY, {"code": "12"}, REMOTE_ADDR=f"198.51.100.{i + 1}")  # malformed counts too
        assert response.status_code == 400
        assert limit_headers(response)[:2] == (2, 1 - i)

    refused = client.post(VERIFY, {"code": oathtool(secret)}, REMOTE_ADDR="203.0.113.9")

    assert refused.status_code == 429
    assert "Too many verification attempts. Try again in 30 minutes." in refused.content.decode()
    assert limit_headers(refused)[:2] == (2, 0) and 1700 <= int(refused["Retry-After"]) <= 1800
    assert client.get("/").status_code == 302, "not signed in"


def test_step_up_page_is_throttled_per_ip_with_headers(client: Client, ann: Any, totp_device: Any,
                                                      logged_in: Any, rates: Any) -> None:
    rates(MFA_CODE_RATE="2/h", MFA_ACCOUNT_RATE="100/h")
    _, secret = totp_device(ann)
    logged_in(ann)
    assert "X-RateLimit-Limit" not in client.get(STEP_UP + "?next=/")
    wrong = f"{(int(oathtool(secret)) + 3) % 1_000_000:06d}"
    first = client.post(STEP_UP, {"code": wrong, "next": "/"})
    assert first.status_code == 400 and limit_headers(first)[:2] == (2, 1)
    done = client.post(STEP_UP, {"code": oathtool(secret), "next": "/"})
    assert done.status_code == 302 and limit_headers(done)[:2] == (2, 0)

    refused = client.post(STEP_UP, {"code": oathtool(secret), "next": "/"})

    assert refused.status_code == 429
    assert "Too many verification attempts. Try again in 30 minutes." in refused.content.decode()
    assert int(refused["Retry-After"]) > 0


def test_the_embedded_step_up_prompt_shares_the_code_buckets(client: Client, ann: Any, totp_device: Any,
                                                             logged_in: Any, rates: Any) -> None:
    rates(MFA_CODE_RATE="1/h", MFA_ACCOUNT_RATE="100/h")
    _, secret = totp_device(ann)
    logged_in(ann)
    assert client.post(STEP_UP, {"code": "000", "next": "/"}).status_code == 400

    refused = client.post("/settings/mfa/recovery/", {"twig_step_up_code": oathtool(secret)})

    assert refused.status_code == 429
    assert "Too many verification attempts." in refused.content.decode()
    assert limit_headers(refused)[:2] == (1, 0)


# --- password reset -------------------------------------------------------------------------------------


def test_reset_per_email_limit_sends_nothing_more_and_says_how_long(client: Client, ann: Any, rates: Any) -> None:
    rates(PASSWORD_RESET_RATE="2/h")
    for i in range(2):
        response = client.post(RESET, {"email": "ann@acme.test"}, REMOTE_ADDR=f"198.51.100.{i + 1}")
        assert response.status_code == 302 and limit_headers(response)[:2] == (2, 1 - i)
    assert len(mail.outbox) == 2

    refused = client.post(RESET, {"email": "ANN@acme.test"}, REMOTE_ADDR="203.0.113.9")

    assert refused.status_code == 429
    assert "Too many password reset requests. Try again in 30 minutes." in refused.content.decode()
    assert len(mail.outbox) == 2, "a refused request sends nothing"
    assert AuditEvent.objects.filter(event="PASSWORD_RESET_REQUESTED").count() == 2


def test_reset_refusal_looks_the_same_for_unknown_addresses(client: Client, ann: Any, rates: Any) -> None:
    rates(PASSWORD_RESET_RATE="1/h")
    refusals = []
    for n, email in enumerate(("ann@acme.test", "nobody@acme.test")):
        assert client.post(RESET, {"email": email}, REMOTE_ADDR=f"198.51.100.{n + 1}").status_code == 302
        refused = client.post(RESET, {"email": email}, REMOTE_ADDR=f"203.0.113.{n + 1}")
        assert refused.status_code == 429
        alert = re.search(r'role="alert">([^<]*)<', refused.content.decode())
        refusals.append((alert and alert.group(1), sorted(h for h in refused.headers if h.startswith("X-Rate"))))
    assert refusals[0] == refusals[1]
    assert refusals[0][0] == "Too many password reset requests. Try again in 1 hour."
    assert len(mail.outbox) == 1


def test_reset_per_ip_limit_counts_every_email(client: Client, db: None, rates: Any) -> None:
    rates(PASSWORD_RESET_RATE="2/h")
    assert client.post(RESET, {"email": "a@example.test"}).status_code == 302
    assert client.post(RESET, {"email": ""}).status_code == 200  # invalid form: still one request
    refused = client.post(RESET, {"email": "c@example.test"})
    assert refused.status_code == 429 and limit_headers(refused)[:2] == (2, 0)
    assert 'value="c@example.test"' in refused.content.decode()


# --- the module -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "words"), [(0, "1 second"), (1, "1 second"), (42, "42 seconds"),
                                                (60, "1 minute"), (61, "2 minutes"), (1200, "20 minutes"),
                                                (3600, "1 hour"), (3601, "2 hours")])
def test_wait_phrase(seconds: int, words: str) -> None:
    assert endpoints.wait_phrase(seconds) == words


def test_refused_message_names_the_wait() -> None:
    result = bucket.BucketResult(False, 30, 0, int(time.time()) + 60, 42)
    assert endpoints.refused_message(endpoints.LOGIN, result) == "Too many sign-in attempts. Try again in 42 seconds."
    error = endpoints.refused(endpoints.LOGIN, result)
    assert (error.code, error.retry_after, error.extra["retry_after"]) == ("rate_limit_exceeded", 42, 42)
    assert error.headers["Retry-After"] == "42" and error.headers["X-RateLimit-Limit"] == "30"


@pytest.mark.parametrize(("ip", "principal"), [
    ("198.51.100.4", "ip:198.51.100.4"), ("2001:db8::1", "ip:2001:db8::/64"),
    ("2001:db8:0:0:ffff::1", "ip:2001:db8::/64"), ("0.0.0.0", "ip:0.0.0.0"),
])
def test_ip_principal(ip: str, principal: str) -> None:
    assert endpoints.ip_principal(ip) == principal


def test_without_an_account_only_the_ip_bucket_is_used(db: None) -> None:
    request = RequestFactory().post(LOGIN, REMOTE_ADDR="198.51.100.8")
    for account in (None, "", "   "):
        endpoints.check(request, "test", account=account, ip_rate="5/h", account_rate="1/h")
    assert stored_keys() == [bucket.bucket_key("ip:198.51.100.8", "test")]


@pytest.mark.parametrize("name", ["LOGIN_IP_RATE", "LOGIN_ACCOUNT_RATE", "MFA_CODE_RATE", "MFA_ACCOUNT_RATE",
                                  "PASSWORD_RESET_RATE"])
def test_rate_settings_use_the_bucket_grammar(name: str) -> None:
    setting = {s.name: s for s in SETTINGS}[name]
    assert setting.check(setting.default) is None
    assert setting.check("5/10s") is None
    for bad in ("0/m", "10/0s", "lots", 10, None):
        assert setting.check(bad), bad
