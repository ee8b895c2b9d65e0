"""The DRF throttle: a bucket per API key (or member) and scope class, the headers, 429, org overrides.

Runs on the configured cache: the per-process bucket on the embedded default, the Redis script with
``REDIS_URL``. Rates are per hour so that refill during a test never changes a count.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from twig_auth.apikeys.services import issue_api_key
from twig_auth.exceptions import PermissionDenied
from twig_auth.orgs import services as org_services
from twig_auth.ratelimit.rates import Rate, limits_for

SMALL = {"read": "4/h", "write": "2/h", "execute": "3/h", "admin": "2/h"}


@pytest.fixture
def small_rates(settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "RATE_LIMITS": SMALL, "API_KEY_HASHER":
                          "twig_auth.apikeys.hashers.HmacSha256KeyHasher"}


@pytest.fixture
def key_of(small_rates: None) -> Any:
    def make(member: Any, scopes: tuple[str, ...] = ("read", "write", "execute")) -> dict[str, str]:
        _key, plaintext = issue_api_key(creator=member, name="k", scopes=list(scopes), environment="live")
        return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}

    return make


def get(client: Client, path: str, headers: dict[str, str]) -> Any:
    return client.get(path, **headers)


def post(client: Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def limit_headers(response: Any) -> tuple[int, int, int]:
    return (int(response["X-RateLimit-Limit"]), int(response["X-RateLimit-Remaining"]),
            int(response["X-RateLimit-Reset"]))


def test_every_answer_carries_the_headers_and_the_reset_is_when_the_bucket_is_full(owner, key_of, client):
    auth = key_of(owner)
    before = time.time()
    first = get(client, "/api/agents", auth)
    assert first.status_code == 200
    limit, remaining, reset = limit_headers(first)
    assert (limit, remaining) == (4, 3)
    # One token of a 4/h bucket comes back in 900 s: the bucket is full again then.
    assert int(before) + 899 <= reset <= int(time.time()) + 901
    second = get(client, "/api/agents", auth)
    assert limit_headers(second)[:2] == (4, 2)
    assert limit_headers(second)[2] >= reset + 899  # two tokens to refill now
    assert "Retry-After" not in second


def test_an_empty_bucket_answers_429_with_retry_after_and_the_contract_body(owner, key_of, client):
    auth = key_of(owner)
    admitted = [get(client, "/api/agents", auth).status_code for _ in range(4)]
    assert admitted == [200] * 4
    refused = get(client, "/api/agents", auth)
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "rate_limit_exceeded" and "second" in body["detail"]
    assert 899 <= int(refused["Retry-After"]) <= 900 and body["retry_after"] == int(refused["Retry-After"])
    limit, remaining, _reset = limit_headers(refused)
    assert (limit, remaining) == (4, 0)


def test_each_scope_class_has_its_own_bucket(owner, key_of, client):
    auth = key_of(owner)
    for n in range(2):
        created = post(client, "/api/agents", {"name": f"a{n}", "config": {}}, auth)
        assert created.status_code == 201, created.content
        assert limit_headers(created)[:2] == (2, 1 - n)
    assert post(client, "/api/agents", {"name": "a3", "config": {}}, auth).status_code == 429
    listed = get(client, "/api/agents", auth)  # the read bucket is untouched by the writes
    assert listed.status_code == 200 and limit_headers(listed)[:2] == (4, 3)


def test_each_key_has_its_own_bucket(owner, key_of, client):
    one, two = key_of(owner), key_of(owner)
    for _ in range(4):
        get(client, "/api/agents", one)
    assert get(client, "/api/agents", one).status_code == 429
    other = get(client, "/api/agents", two)
    assert other.status_code == 200 and limit_headers(other)[:2] == (4, 3)


def test_a_refused_request_does_not_run_the_view(owner, key_of, client):
    auth = key_of(owner)
    for n in range(2):
        assert post(client, "/api/agents", {"name": f"a{n}", "config": {}}, auth).status_code == 201
    assert post(client, "/api/agents", {"name": "late", "config": {}}, auth).status_code == 429
    names = [a["name"] for a in get(client, "/api/agents", auth).json()]
    assert "late" not in names


def test_sessions_are_limited_per_member_and_org(owner, small_rates, client):
    client.force_login(owner.user, backend="twig_auth.passwords.backends.EmailBackend")
    statuses = [client.get("/api/agents").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def test_anonymous_requests_are_not_bucketed_here(small_rates, client, db):
    response = client.get("/api/agents")
    assert response.status_code == 401 and "X-RateLimit-Limit" not in response


def test_enterprise_orgs_may_override_their_limits(owner, key_of, client, django_capture_on_commit_callbacks):
    org_services.update_org_settings(org=owner.org, patch={"rateLimits": {"read": "6/h"}})
    assert limits_for(owner.org_id, "read") == Rate(6, 3600)
    assert limits_for(owner.org_id, "write") == Rate(2, 3600)  # the others keep the deployment's rates
    response = get(client, "/api/agents", key_of(owner))
    assert limit_headers(response)[:2] == (6, 5)


def test_free_orgs_cannot_set_rate_limits_and_bad_rates_are_named(make_org, org):
    free = make_org("freebie", plan="free")
    with pytest.raises(PermissionDenied):
        org_services.update_org_settings(org=free, patch={"rateLimits": {"read": "1000/m"}})
    from twig_auth.exceptions import InvalidInput

    with pytest.raises(InvalidInput) as info:
        org_services.update_org_settings(org=org, patch={"rateLimits": {"read": "0/m", "delete": "1/m"}})
    assert set(info.value.errors) == {"rateLimits.read", "rateLimits.delete"}


def test_the_warm_api_key_path_makes_no_sql_query(owner, key_of, client, django_assert_num_queries):
    auth = key_of(owner)
    assert get(client, "/api/org/settings", auth).status_code in (200, 403)  # warm the key and org caches
    from twig_auth.ratelimit import bucket

    with django_assert_num_queries(0):
        bucket.take(bucket.bucket_key("k:probe", "read"), limits_for(owner.org_id, "read"))


class CommandCounter:
    """Counts the commands redis-py sends (one per round trip: the client does not pipeline here)."""

    def __init__(self) -> None:
        self.names: list[str] = []


@pytest.fixture
def redis_commands(monkeypatch: pytest.MonkeyPatch) -> CommandCounter:
    import redis.connection

    counter = CommandCounter()
    real = redis.connection.AbstractConnection.send_command

    def send_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter.names.append(str(args[0]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", send_command)
    return counter


@pytest.mark.urls("tests.ratelimit.urls")
def test_a_warm_api_key_request_is_one_redis_round_trip_and_no_sql(owner, key_of, client, redis_commands,
                                                                    django_assert_num_queries):
    from twig_auth.core.redis import redis_configured

    auth = key_of(owner, ("read",))
    for n in range(2):  # the first verifies cold; the second learns nothing new but warms every cache
        assert get(client, "/ping", auth).status_code == 200
    redis_commands.names.clear()
    with django_assert_num_queries(0):
        response = get(client, "/ping", auth)
    assert response.status_code == 200 and limit_headers(response)[:2] == (4, 1)
    if redis_configured():
        # The key's entry and the bucket in one script: EVALSHA (a first EVAL loads it on a new server).
        assert redis_commands.names in (["EVALSHA"], ["EVAL"]), redis_commands.names
    else:
        assert redis_commands.names == []


def access_token(client: Client, email: str) -> str:
    response = client.post("/api/auth/token", data=json.dumps({"email": email, "password": "Correct-Horse-9!"}),
                           content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


@pytest.mark.urls("tests.ratelimit.urls")
def test_a_warm_access_token_request_is_one_redis_round_trip_with_its_revocation_check(
        owner, small_rates, client, redis_commands, django_assert_num_queries):
    from twig_auth.core.redis import redis_configured

    token = access_token(client, owner.user.email)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert get(client, "/ping", auth).status_code == 200
    redis_commands.names.clear()
    with django_assert_num_queries(0):
        response = get(client, "/ping", auth)
    assert response.status_code == 200 and limit_headers(response)[:2] == (4, 2)
    if redis_configured():
        # The family's revocation marker and the member's bucket in one script.
        assert redis_commands.names in (["EVALSHA"], ["EVAL"]), redis_commands.names
    else:
        assert redis_commands.names == []


@pytest.mark.urls("tests.ratelimit.urls")
def test_a_revoked_token_is_refused_and_takes_no_token(owner, small_rates, client):
    from twig_auth.tokens import services as token_services

    pair = client.post("/api/auth/token", data=json.dumps({"email": owner.user.email, "password": "Correct-Horse-9!"}),
                       content_type="application/json").json()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {pair['access_token']}"}
    assert limit_headers(get(client, "/ping", auth))[:2] == (4, 3)
    from twig_auth.core.context import RequestContext

    assert token_services.revoke(token=pair["refresh_token"], context=RequestContext.system())
    refused = get(client, "/ping", auth)
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"
    client.force_login(owner.user, backend="twig_auth.passwords.backends.EmailBackend")
    # The session shares the member's bucket: the refused token request took nothing from it.
    assert limit_headers(client.get("/ping"))[:2] == (4, 2)
