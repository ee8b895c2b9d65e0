"""``/api/auth/token``, ``/refresh``, ``/revoke``; JwtAuthentication on the reference API; revocation; bad input."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import PASSWORD
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import TokenReused
from twig_auth.passwords.services import record_password_changed
from twig_auth.tokens import jwt
from twig_auth.tokens.models import RefreshToken
from twig_auth.tokens.services import hash_refresh_token, issue_tokens, refresh

from .conftest import assert_error, bearer, post_json

TOKEN = "/api/auth/token"
REFRESH = "/api/auth/token/refresh"
REVOKE = "/api/auth/token/revoke"


# --- POST /api/auth/token ----------------------------------------------------------------------------------


def test_token_endpoint_returns_a_pair_stores_only_a_hash_and_audits_the_login(owner, client):
    response = post_json(client, TOKEN, {"email": "OWNER@acme.test", "password": PASSWORD})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    claims = jwt.decode(body["access_token"])
    assert claims["sub"] == str(owner.user_id) and claims["org"] == owner.org_id and claims["mem"] == owner.pk
    assert claims["role"] == "super_admin" and "admin" in claims["roles"]
    row = RefreshToken.objects.get()
    assert row.token_hash == hash_refresh_token(body["refresh_token"]) and body["refresh_token"] not in row.token_hash
    assert row.family == claims["fam"] and row.membership_id == owner.pk and row.used_at is None
    assert row.expires_at - row.created_at == dt.timedelta(days=30)
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.details == {"method": "token"} and event.user_id == owner.user_id


def test_org_slug_picks_the_membership_and_a_foreign_slug_is_refused(owner, make_org, client):
    from twig_auth.orgs.services import add_member

    other = make_org("other-co")
    membership = add_member(org=other, user=owner.user, role="user")
    body = post_json(client, TOKEN, {"email": "owner@acme.test", "password": PASSWORD, "org": "other-co"}).json()
    claims = jwt.decode(body["access_token"])
    assert claims["org"] == other.pk and claims["mem"] == membership.pk and claims["role"] == "user"
    assert jwt.decode(post_json(client, TOKEN, {"email": "owner@acme.test", "password": PASSWORD})
                      .json()["access_token"])["org"] == owner.org_id  # default: the first membership
    make_org("stranger")
    assert_error(post_json(client, TOKEN, {"email": "owner@acme.test", "password": PASSWORD, "org": "stranger"}),
                 403, "permission_denied")


def test_wrong_password_and_unknown_email_are_the_same_401(owner, client):
    a = assert_error(post_json(client, TOKEN, {"email": "owner@acme.test", "password": "Wrong-Horse-9!"}),
                     401, "invalid_credentials")
    b = assert_error(post_json(client, TOKEN, {"email": "nobody@acme.test", "password": "Wrong-Horse-9!"}),
                     401, "invalid_credentials")
    assert a == b
    assert not RefreshToken.objects.exists()


def test_locked_account_answers_403_with_retry_after(owner, client):
    for _ in range(5):
        post_json(client, TOKEN, {"email": "owner@acme.test", "password": "Wrong-Horse-9!"})
    response = post_json(client, TOKEN, {"email": "owner@acme.test", "password": PASSWORD})
    assert_error(response, 403, "account_locked")
    assert 0 < int(response["Retry-After"]) <= 900


def test_user_without_membership_gets_403(make_user, client):
    make_user(email="loner@example.test")
    assert_error(post_json(client, TOKEN, {"email": "loner@example.test", "password": PASSWORD}),
                 403, "permission_denied")
    assert not RefreshToken.objects.exists()


def test_token_endpoint_is_throttled_per_ip(owner, client, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "LOGIN_IP_RATE": "3/h"}  # hourly: no refill mid-test
    for i in range(3):
        response = post_json(client, TOKEN, {"email": f"x{i}@acme.test", "password": "nope"})
        assert_error(response, 401, "invalid_credentials")
        assert response["X-RateLimit-Limit"] == "3" and response["X-RateLimit-Remaining"] == str(2 - i)
    response = post_json(client, TOKEN, {"email": "owner@acme.test", "password": PASSWORD})
    assert_error(response, 429, "rate_limit_exceeded")
    assert 0 < int(response["Retry-After"]) <= 1200
    assert not AuditEvent.objects.filter(email="owner@acme.test").exists(), "refused before the password check"


def test_refresh_and_revoke_share_their_own_per_ip_bucket(owner, client, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "LOGIN_IP_RATE": "2/h"}
    assert_error(post_json(client, REFRESH, {"refresh_token": "x"}), 401, "invalid_token")
    assert post_json(client, REVOKE, {"token": "x"}).status_code == 200
    response = post_json(client, REFRESH, {"refresh_token": "x"})
    assert_error(response, 429, "rate_limit_exceeded")
    assert response["X-RateLimit-Remaining"] == "0" and int(response["Retry-After"]) > 0
    # Sign-in has its own bucket: refreshing does not use up the budget for passwords.
    assert post_json(client, TOKEN, {"email": "owner@acme.test", "password": PASSWORD}).status_code == 200


BAD_BODIES: list[Any] = [
    {}, {"email": "", "password": ""}, {"email": 5, "password": PASSWORD}, {"email": "owner@acme.test", "password": 12},
    {"email": ["owner@acme.test"], "password": PASSWORD}, {"email": "owner@acme.test", "password": None},
    {"email": "o" * 100_000, "password": PASSWORD}, {"email": "owner@acme.test", "password": "p" * 100_000},
    {"email": "owner\x00@acme.test", "password": PASSWORD}, {"email": "owner@acme.test", "password": PASSWORD,
                                                             "org": {"slug": "acme"}},
    [], "not json", "[[[[", "null", {"email": True, "password": False},
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_input_to_the_token_endpoint_is_400_invalid(owner, client, body):
    body_error = assert_error(post_json(client, TOKEN, body), 400, "invalid")
    assert body_error["errors"]


@pytest.mark.parametrize("body", [{}, {"refresh_token": ""}, {"refresh_token": 7}, {"refresh_token": ["a"]},
                                  {"refresh_token": "r" * 100_000}, {"refresh_token": "twigrt_\x00"}, [], "nope"])
def test_bad_input_to_refresh_is_400_invalid(db, client, body):
    assert_error(post_json(client, REFRESH, body), 400, "invalid")


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": 7}, {"token": None}, {"token": "t" * 100_000},
                                  {"token": "a\x00b"}, [], "nope"])
def test_bad_input_to_revoke_is_400_invalid(db, client, body):
    assert_error(post_json(client, REVOKE, body), 400, "invalid")


# --- JwtAuthentication on the reference API ---------------------------------------------------------------


def test_access_token_authenticates_the_api_with_no_user_membership_or_token_query(owner, obtain, client):
    pair = obtain()
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/agents", **bearer(pair["access_token"]))
    assert response.status_code == 200, response.content
    # the view itself lists agents (joining their authors); nothing is read to authenticate or authorize
    sql = [q["sql"] for q in queries.captured_queries]
    assert sql and all(' FROM "workspace_agents"' in q for q in sql), sql
    for table in ("users", "twig_memberships", "twig_refresh_tokens", "twig_organizations", "django_session"):
        assert not any(f'FROM "{table}"' in q for q in sql), sql


@pytest.mark.parametrize("mfa_covered", [False, True])
def test_jwt_authentication_itself_runs_no_query_and_one_cache_get(owner, obtain, monkeypatch, mfa_covered):
    """One cache get (the family's revocation marker), also for a member the org's MFA policy covers: the
    token carries their grace deadline (``mfa_dl``), so nothing more is read until it passes."""
    from twig_auth.orgs.services import update_org_settings

    if not mfa_covered:
        update_org_settings(org=owner.org, patch={"mfa": {"requiredForAdmins": False}})
    from django.core.cache import caches
    from django.test import RequestFactory
    from rest_framework.request import Request

    from twig_auth.conf import app_settings
    from twig_auth.contrib.rest_framework.authentication import JwtAuthentication
    from twig_auth.tokens.verification import AccessPrincipal

    token = obtain()["access_token"]
    from twig_auth.core.cache import strict

    cache = strict(caches[app_settings.REDIS_CACHE_ALIAS])  # what verification calls (django-redis: its client)
    calls: list[str] = []
    for name in ("get", "get_many", "set", "add", "incr", "delete", "has_key"):
        real = getattr(cache, name)
        monkeypatch.setattr(cache, name, lambda *a, __r=real, __n=name, **k: (calls.append(__n), __r(*a, **k))[1])
    request = Request(RequestFactory().get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {token}"))
    with CaptureQueriesContext(connection) as queries:
        user, principal = JwtAuthentication().authenticate(request)
        assert user.is_authenticated and user.pk == owner.user_id and bool(user)
        assert isinstance(principal, AccessPrincipal) and principal.membership.has_role("admin")
        assert principal.membership.org_id == owner.org_id and principal.membership.user_id == owner.user_id
    assert len(queries.captured_queries) == 0
    assert calls == ["get"]
    assert bool(principal.mfa_deadline) is mfa_covered


def test_tokens_are_not_scoped_the_member_role_applies(owner, make_member, org, obtain, client):
    # an API key needs the admin scope here; a token acts with the member's role
    assert client.get("/api/org/settings", **bearer(obtain()["access_token"])).status_code == 200
    make_member(org, "user", email="user@acme.test")
    user_token = obtain("user@acme.test")["access_token"]
    assert_error(client.get("/api/org/settings", **bearer(user_token)), 403, "permission_denied")
    assert client.get("/api/agents", **bearer(user_token)).status_code == 200


def test_tampered_access_token_is_401_invalid_token(owner, obtain, client):
    token = obtain()["access_token"]
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    response = client.get("/api/agents", **bearer(f"{header}.{payload}.{flipped}"))
    assert_error(response, 401, "invalid_token")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_access_token_is_401_token_expired(owner, obtain, client):
    with clock.frozen() as frozen:
        token = obtain()["access_token"]
        frozen.advance(seconds=3601)
        assert_error(client.get("/api/agents", **bearer(token)), 401, "token_expired")


# --- refresh rotation, reuse detection, revocation -------------------------------------------------------


def test_refresh_rotates_and_the_new_pair_works(owner, obtain, client):
    first = obtain()
    response = post_json(client, REFRESH, {"refresh_token": first["refresh_token"]})
    assert response.status_code == 200, response.content
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"] and second["token_type"] == "Bearer"
    assert jwt.decode(second["access_token"])["fam"] == jwt.decode(first["access_token"])["fam"]
    old = RefreshToken.objects.get(token_hash=hash_refresh_token(first["refresh_token"]))
    new = RefreshToken.objects.get(token_hash=hash_refresh_token(second["refresh_token"]))
    assert old.used_at is not None and old.replaced_by_id == new.pk and new.used_at is None
    assert client.get("/api/agents", **bearer(second["access_token"])).status_code == 200
    assert client.get("/api/agents", **bearer(first["access_token"])).status_code == 200  # still in its hour


def test_replaying_a_used_refresh_token_revokes_the_family_and_its_access_tokens(owner, obtain, client):
    first = obtain()
    second = post_json(client, REFRESH, {"refresh_token": first["refresh_token"]}).json()
    other_login = obtain()  # another family of the same user is left alone
    assert_error(post_json(client, REFRESH, {"refresh_token": first["refresh_token"]}), 401, "token_reused")
    assert_error(client.get("/api/agents", **bearer(second["access_token"])), 401, "invalid_token")
    assert_error(client.get("/api/agents", **bearer(first["access_token"])), 401, "invalid_token")
    assert_error(post_json(client, REFRESH, {"refresh_token": second["refresh_token"]}), 401, "invalid_token")
    family = jwt.decode(first["access_token"])["fam"]
    assert not RefreshToken.objects.filter(family=family, revoked_at__isnull=True).exists()
    event = AuditEvent.objects.get(event="TOKEN_REUSED")
    assert event.details["family"] == family and event.user_id == owner.user_id
    assert client.get("/api/agents", **bearer(other_login["access_token"])).status_code == 200


def test_unknown_and_expired_refresh_tokens(owner, obtain, client):
    assert_error(post_json(client, REFRESH, {"refresh_token": "twigrt_" + "A" * 43}), 401, "invalid_token")
    with clock.frozen() as frozen:
        pair = obtain()
        frozen.advance(days=30, seconds=1)
        assert_error(post_json(client, REFRESH, {"refresh_token": pair["refresh_token"]}), 401, "token_expired")


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_with_one_token_let_exactly_one_through(owner):
    pair = issue_tokens(user=owner.user, membership=owner, context=RequestContext.system())
    threads_n = 6
    barrier = threading.Barrier(threads_n)
    results: list[object] = []

    def attempt() -> None:
        try:
            barrier.wait()
            results.append(refresh(refresh_token=pair["refresh_token"], context=RequestContext.system()))
        except Exception as exc:  # noqa: BLE001
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    wins = [r for r in results if isinstance(r, dict)]
    assert len(results) == threads_n
    assert len(wins) == 1, results
    assert all(isinstance(r, TokenReused) for r in results if not isinstance(r, dict)), results
    assert RefreshToken.objects.filter(used_at__isnull=False).count() == 1


def test_revoke_refresh_token_ends_the_family_and_unknown_tokens_are_200(owner, obtain, client):
    pair = obtain()
    assert post_json(client, REVOKE, {"token": "twigrt_" + "Z" * 43}).status_code == 200
    assert post_json(client, REVOKE, {"token": "whatever"}).status_code == 200
    response = post_json(client, REVOKE, {"token": pair["refresh_token"]})
    assert response.status_code == 200 and response.json() == {}
    assert_error(post_json(client, REFRESH, {"refresh_token": pair["refresh_token"]}), 401, "invalid_token")
    assert_error(client.get("/api/agents", **bearer(pair["access_token"])), 401, "invalid_token")
    assert post_json(client, REVOKE, {"token": pair["refresh_token"]}).status_code == 200  # twice: still 200


def test_revoke_access_token_ends_its_family(owner, obtain, client):
    pair = obtain()
    assert post_json(client, REVOKE, {"token": pair["access_token"]}).status_code == 200
    assert_error(client.get("/api/agents", **bearer(pair["access_token"])), 401, "invalid_token")
    assert_error(post_json(client, REFRESH, {"refresh_token": pair["refresh_token"]}), 401, "invalid_token")


def test_password_change_revokes_every_token_of_the_user(owner, obtain, client):
    pairs = [obtain(), obtain()]
    record_password_changed(user=owner.user, context=RequestContext.system(), via="change")
    for pair in pairs:
        assert_error(post_json(client, REFRESH, {"refresh_token": pair["refresh_token"]}), 401, "invalid_token")
        assert_error(client.get("/api/agents", **bearer(pair["access_token"])), 401, "invalid_token")
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()


def test_password_change_page_revokes_tokens(owner, obtain, logged_in):
    pair = obtain()
    web = logged_in(owner.user)
    response = web.post("/password/change/", {"old_password": PASSWORD, "new_password1": "New-Secret-Pass-42!",
                                              "new_password2": "New-Secret-Pass-42!"})
    assert response.status_code == 302
    assert_error(post_json(Client(), REFRESH, {"refresh_token": pair["refresh_token"]}), 401, "invalid_token")


def test_role_change_and_removal_end_the_members_tokens(client, org, owner, make_member):
    from twig_auth.orgs import services as org_services

    member = make_member(org, "admin", email="adm@acme.test")
    pair = client.post("/api/auth/token", {"email": "adm@acme.test", "password": "Correct-Horse-9!"},
                       content_type="application/json").json()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {pair['access_token']}"}
    assert client.get("/api/org/settings", **auth).status_code == 200
    org_services.change_role(membership=member, role="user")
    response = client.get("/api/org/settings", **auth)
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"
    refreshed = client.post("/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]},
                            content_type="application/json")
    assert refreshed.status_code == 401


def test_logout_revokes_the_users_refresh_tokens(client, org, make_member):
    make_member(org, email="mia@acme.test")
    pair = client.post("/api/auth/token", {"email": "mia@acme.test", "password": "Correct-Horse-9!"},
                       content_type="application/json").json()
    assert client.post("/login/", {"email": "mia@acme.test", "password": "Correct-Horse-9!"}).status_code == 302
    assert client.post("/logout/").status_code == 302
    refreshed = client.post("/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]},
                            content_type="application/json")
    assert refreshed.status_code == 401
    response = client.get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}")
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"
