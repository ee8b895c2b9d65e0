"""Redis stopped or unreachable mid-test: requests keep being served from the database, nothing revoked during
the outage is accepted, during it or after Redis is back (empty after a restart, or with its stale entries
after a partition), and the outage logs exactly one warning.

Each test runs its own ``redis-server`` (a private port, no persistence) and points ``CACHES`` at it, so the
tests run the same on both suite backends. A missing ``redis-server`` fails them: they must never be skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.test import Client

from bench.servers import PrivateRedis, ServerError
from tests.conftest import PASSWORD
from tests.support.logins import login_outcome
from twig_auth.apikeys import verification
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.services import issue_api_key, revoke_api_key
from twig_auth.core import outage
from twig_auth.core.context import RequestContext
from twig_auth.tokens import services as token_services

CTX = RequestContext(ip="203.0.113.9", user_agent="pytest")


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = time.monotonic()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def redis_server(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateRedis]:
    try:  # a missing or broken redis-server fails these tests: they must never be skipped
        server = PrivateRedis()
        server.start()
    except ServerError as exc:
        pytest.fail(f"{exc} (scripts/test installs it).", pytrace=False)
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{server.port}/0",
        "KEY_PREFIX": "twig-outage-test", "OPTIONS": django_settings.CACHES["default"].get("OPTIONS") or
        {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.5}}}
    settings.CACHES["default"]["OPTIONS"] = {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.5}
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_BCRYPT_ROUNDS": 4, "LOCKOUT_MAX_ATTEMPTS": 3}
    monkeypatch.setattr(outage._breaker, "monotonic", FakeMonotonic())  # the backoff passes when the test says
    outage.reset()
    verification.clear_local()
    try:
        yield server
    finally:
        server.stop()
        outage.reset()


def after_backoff() -> None:
    outage._breaker.monotonic.t += outage.MAX_BACKOFF + 1  # type: ignore[attr-defined]


def served(response: Any) -> Any:
    assert response.status_code < 500, response.content[:300]
    return response


def bearer(value: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {value}"}


def api(client: Client, credential: str) -> int:
    return served(client.get("/api/agents", **bearer(credential))).status_code


def sign_in(email: str) -> Client:
    client = Client(REMOTE_ADDR="127.0.0.1")
    response = served(client.post("/login/", {"email": email, "password": PASSWORD}))
    assert response.status_code == 302, response.content[:300]
    return client


def page(client: Client) -> int:
    return served(client.get("/")).status_code


def stolen_copy(client: Client) -> Client:
    thief = Client()
    thief.cookies[django_settings.SESSION_COOKIE_NAME] = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return thief


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "twig_auth.core.outage" and r.levelno >= logging.WARNING]


@pytest.fixture
def world(redis_server: PrivateRedis, org: Any, owner: Any, make_member: Any) -> dict[str, Any]:
    make_member(org, "user", email="mia@acme.test")
    make_member(org, "user", email="lou@acme.test")
    _, key_a = issue_api_key(creator=owner, name="a", scopes=["read"], environment="live")
    row_b, key_b = issue_api_key(creator=owner, name="b", scopes=["read"], environment="live")
    client = Client()
    pairs = []
    for _ in range(2):
        response = served(client.post("/api/auth/token", {"email": "owner@acme.test", "password": PASSWORD},
                                      content_type="application/json"))
        assert response.status_code == 200, response.content
        pairs.append(response.json())
    session, doomed = sign_in("mia@acme.test"), sign_in("mia@acme.test")
    # warm every cache: keys verified, markers read, sessions cached in Redis
    assert api(client, key_a) == api(client, key_b) == 200
    assert api(client, pairs[0]["access_token"]) == api(client, pairs[1]["access_token"]) == 200
    assert page(session) == page(doomed) == 200
    assert caches["default"].get(verification._entry(verification.digest_of(key_b))) is not None
    return {"client": client, "key_a": key_a, "key_b": key_b, "row_b": row_b, "pairs": pairs,
            "session": session, "doomed": doomed}


def revoke_everything_of_b(w: dict[str, Any]) -> Client:
    """Revoke key b, token family 1, and log the doomed session out; return a client with its old cookie."""
    revoke_api_key(key=ApiKey.objects.get(pk=w["row_b"].pk), context=CTX)
    assert token_services.revoke(token=w["pairs"][1]["refresh_token"], context=CTX)
    thief = stolen_copy(w["doomed"])
    served(w["doomed"].post("/logout/"))
    return thief


def assert_b_refused_and_a_served(w: dict[str, Any], thief: Client) -> None:
    client = w["client"]
    assert api(client, w["key_b"]) == 401
    assert api(client, w["pairs"][1]["access_token"]) == 401
    assert page(thief) == 302  # the logged-out session is no session
    assert api(client, w["key_a"]) == 200
    assert api(client, w["pairs"][0]["access_token"]) == 200
    assert page(w["session"]) == 200


def test_redis_stopped_mid_test_serves_refuses_the_revoked_and_still_does_after_an_empty_restart(
        world: dict[str, Any], redis_server: PrivateRedis, caplog: pytest.LogCaptureFixture) -> None:
    w = world
    with caplog.at_level(logging.INFO):
        redis_server.stop()
        assert api(w["client"], w["key_a"]) == 200  # served from the database
        thief = revoke_everything_of_b(w)  # none of this raises although Redis is gone
        assert_b_refused_and_a_served(w, thief)
        assert page(sign_in("lou@acme.test")) == 200  # logins work
        # lockout keeps counting (in the database): the third failure locks, the right password is refused
        assert [login_outcome("lou@acme.test", "Wrong-Pass-1!") for _ in range(3)] == ["invalid"] * 3
        assert login_outcome("lou@acme.test", PASSWORD) == "locked"
        assert len(outage_warnings(caplog)) == 1, outage_warnings(caplog)
        assert outage.outage_started() is not None

        redis_server.start()  # same port, empty
        after_backoff()
        assert api(w["client"], w["key_a"]) == 200  # this probe finds Redis back: recovery hooks run
        assert outage.outage_started() is None
        assert_b_refused_and_a_served(w, thief)
        assert login_outcome("lou@acme.test", PASSWORD) == "locked"  # the lock was copied into Redis
    assert len(outage_warnings(caplog)) == 1


def test_redis_unreachable_with_its_data_the_stale_entries_are_dropped_on_recovery(
        world: dict[str, Any], redis_server: PrivateRedis, caplog: pytest.LogCaptureFixture) -> None:
    w = world
    entry_b = verification._entry(verification.digest_of(w["key_b"]))
    with caplog.at_level(logging.INFO):
        redis_server.pause()  # a partition: Redis keeps its "valid" entries of b
        thief = revoke_everything_of_b(w)
        assert_b_refused_and_a_served(w, thief)
        assert len(outage_warnings(caplog)) == 1

        redis_server.resume()
        after_backoff()
        # the first request after the partition must not trust the entry it reads: the hooks run first
        assert api(w["client"], w["key_b"]) == 401
        assert outage.outage_started() is None
        assert caches["default"].get(entry_b) in (None, verification.NEGATIVE)  # the "valid" entry is gone
        assert_b_refused_and_a_served(w, thief)
    assert len(outage_warnings(caplog)) == 1


def test_revoking_while_redis_is_down_never_raises_and_a_second_outage_warns_again(
        world: dict[str, Any], redis_server: PrivateRedis, caplog: pytest.LogCaptureFixture) -> None:
    w = world
    with caplog.at_level(logging.WARNING, logger="twig_auth.core.outage"):
        redis_server.stop()
        verification.invalidate(["nope"], revoked=True)
        token_services.revoke_user_tokens(w["row_b"].created_by.user)
        assert api(w["client"], w["pairs"][0]["access_token"]) == 401
        redis_server.start()
        after_backoff()
        assert api(w["client"], w["key_a"]) == 200
        assert api(w["client"], w["pairs"][0]["access_token"]) == 401  # marker written on recovery
        redis_server.stop()
        assert api(w["client"], w["key_a"]) == 200
    assert len(outage_warnings(caplog)) == 2


def test_rate_limits_stay_on_per_process_with_their_headers_while_redis_is_down(
        world: dict[str, Any], redis_server: PrivateRedis, settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "RATE_LIMITS": {"read": "3/h"}}
    redis_server.stop()
    responses = [served(world["client"].get("/api/agents", **bearer(world["key_a"]))) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert all(r["X-RateLimit-Limit"] == "3" for r in responses)
    refused = responses[-1]
    assert refused.json()["code"] == "rate_limit_exceeded" and int(refused["Retry-After"]) > 0
