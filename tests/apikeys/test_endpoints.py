"""``/api/api-keys``: create, list, revoke, roll, usage; who may manage what; bad input; authentication errors."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client

from twig_auth.apikeys import format as key_format
from twig_auth.apikeys.models import ApiKey
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.mfa import stepup

from .conftest import bearer

NEW_KEY_FIELDS = {"id", "name", "prefix", "scopes", "environment", "created_at", "expires_at", "key"}


@pytest.fixture(autouse=True)
def _fast(fast_bcrypt: None) -> None:
    """bcrypt cost 4 here: these tests are about the endpoints, not the hash cost (see test_hashers)."""


@pytest.fixture
def members(org, owner, make_member) -> dict[str, Any]:
    return {
        "super_admin": owner,
        "admin": make_member(org, "admin", email="admin@acme.test"),
        "manager": make_member(org, "manager", email="manager@acme.test"),
        "user": make_member(org, "user", email="user@acme.test"),
    }


@pytest.fixture
def as_member(members):
    def make(role_or_membership: Any) -> Client:
        membership = members[role_or_membership] if isinstance(role_or_membership, str) else role_or_membership
        client = Client()
        client.force_login(membership.user, backend="twig_auth.passwords.backends.EmailBackend")
        session = client.session
        stepup.mark_verified(session)  # admin-scope keys need a recent second factor (tests/mfa/test_api.py)
        session.save()
        return client

    return make


def post_json(client: Client, path: str, data: Any, **extra: Any) -> Any:
    body = data if isinstance(data, str | bytes) else json.dumps(data)
    return client.post(path, body, content_type="application/json", **extra)


def create(client: Client, **fields: Any) -> Any:
    data = {"name": "ci", "scopes": ["read"], "environment": "live", **fields}
    return post_json(client, "/api/api-keys", data)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body


# --- create ---------------------------------------------------------------------------------------------


def test_create_returns_the_key_once_with_exactly_the_contract_fields(as_member, members, client):
    owner_client = as_member("super_admin")
    response = create(owner_client, name="  CI deploy  ", scopes=["write", "read", "read"], environment="test")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == NEW_KEY_FIELDS
    parsed = key_format.parse(body["key"])
    assert body["prefix"] == parsed.prefix == body["key"][:24]
    assert body["name"] == "CI deploy" and body["scopes"] == ["read", "write"] and body["environment"] == "test"
    assert body["expires_at"] is None and body["id"].startswith("key_")
    row = ApiKey.objects.get(pk=body["id"])
    assert row.key_id == parsed.key_id and row.created_by_id == members["super_admin"].pk
    assert row.hashed_secret.startswith("bcrypt$") and parsed.secret not in row.hashed_secret
    event = AuditEvent.objects.get(event="API_KEY_CREATED", target_id=row.pk)
    assert body["key"] not in json.dumps(event.details) and parsed.secret not in json.dumps(event.details)
    # never again: list and usage do not carry it
    listing = owner_client.get("/api/api-keys")
    usage = owner_client.get(f"/api/api-keys/{row.pk}/usage")
    for text in (listing.content.decode(), usage.content.decode()):
        assert parsed.secret not in text and '"key"' not in text


def test_create_with_expiry(as_member):
    expires = (clock.now() + dt.timedelta(days=7)).replace(microsecond=0)
    response = create(as_member("super_admin"), expires_at=expires.isoformat())
    assert response.status_code == 201
    assert dt.datetime.fromisoformat(response.json()["expires_at"].replace("Z", "+00:00")) == expires
    assert ApiKey.objects.get(pk=response.json()["id"]).expires_at == expires


def test_list_never_contains_a_secret_or_hash(as_member, issue, members):
    owner_client = as_member("super_admin")
    plaintexts = [create(owner_client, name=f"k{i}").json()["key"] for i in range(3)]
    _, by_manager = issue(members["manager"], ["write"])
    response = owner_client.get("/api/api-keys")
    assert response.status_code == 200
    text = response.content.decode()
    for plaintext in [*plaintexts, by_manager]:
        assert plaintext not in text
        assert key_format.parse(plaintext).secret not in text
    for row in ApiKey.objects.all():
        assert row.hashed_secret not in text
    assert "$2b$" not in text and "hashed" not in text and "bcrypt" not in text
    assert len(response.json()) == 4
    assert all(set(item) >= {"id", "name", "prefix", "scopes", "environment", "created_at", "expires_at",
                             "last_used_at", "state"} for item in response.json())


# --- revoke ---------------------------------------------------------------------------------------------


def test_delete_revokes_and_the_key_fails_on_the_next_request(as_member, members, client):
    owner_client = as_member("super_admin")
    body = create(owner_client).json()
    assert client.get("/api/agents", **bearer(body["key"])).status_code == 200
    response = owner_client.delete(f"/api/api-keys/{body['id']}")
    assert response.status_code == 204 and response.content == b""
    assert_error(client.get("/api/agents", **bearer(body["key"])), 401, "invalid_api_key")
    row = ApiKey.objects.get(pk=body["id"])
    assert row.revoked_at is not None and row.revoked_by_id == members["super_admin"].user_id
    assert AuditEvent.objects.filter(event="API_KEY_REVOKED", target_id=row.pk).count() == 1
    listing = {k["id"]: k for k in owner_client.get("/api/api-keys").json()}
    assert listing[row.pk]["state"] == "revoked"
    # revoking again is harmless and not logged twice
    assert owner_client.delete(f"/api/api-keys/{body['id']}").status_code == 204
    assert AuditEvent.objects.filter(event="API_KEY_REVOKED", target_id=row.pk).count() == 1


# --- roll -----------------------------------------------------------------------------------------------


def test_roll_issues_a_new_key_and_the_old_one_works_until_expires_in(as_member, client):
    owner_client = as_member("super_admin")
    start = clock.now()
    with clock.frozen(start) as frozen:
        old = create(owner_client, name="rolling", scopes=["read", "execute"]).json()
        assert client.get("/api/agents", **bearer(old["key"])).status_code == 200  # warm
        response = post_json(owner_client, f"/api/api-keys/{old['id']}/roll", {"expires_in": 3600})
        assert response.status_code == 201, response.json()
        new = response.json()
        assert set(new) == NEW_KEY_FIELDS
        assert new["key"] != old["key"] and new["id"] != old["id"]
        assert new["name"] == "rolling" and new["scopes"] == ["read", "execute"]
        assert ApiKey.objects.get(pk=new["id"]).rolled_from_id == old["id"]
        assert client.get("/api/agents", **bearer(old["key"])).status_code == 200
        assert client.get("/api/agents", **bearer(new["key"])).status_code == 200
        frozen.advance(seconds=3599)
        assert client.get("/api/agents", **bearer(old["key"])).status_code == 200
        frozen.advance(seconds=1)
        assert_error(client.get("/api/agents", **bearer(old["key"])), 401, "invalid_api_key")
        assert client.get("/api/agents", **bearer(new["key"])).status_code == 200
        assert ApiKey.objects.get(pk=old["id"]).expires_at == start + dt.timedelta(seconds=3600)


def test_roll_with_expires_in_zero_revokes_the_old_key_now(as_member, client):
    owner_client = as_member("super_admin")
    old = create(owner_client).json()
    assert client.get("/api/agents", **bearer(old["key"])).status_code == 200  # warm
    response = post_json(owner_client, f"/api/api-keys/{old['id']}/roll", {"expires_in": 0})
    assert response.status_code == 201
    assert_error(client.get("/api/agents", **bearer(old["key"])), 401, "invalid_api_key")
    assert client.get("/api/agents", **bearer(response.json()["key"])).status_code == 200
    assert ApiKey.objects.get(pk=old["id"]).revoked_at is not None
    # a revoked key cannot be rolled again
    body = assert_error(post_json(owner_client, f"/api/api-keys/{old['id']}/roll", {"expires_in": 0}), 400, "invalid")
    assert "id" in body["errors"]


@pytest.mark.parametrize("expires_in", [-1, 30 * 86400 + 1, "soon", None, [], 1.5])
def test_roll_rejects_bad_expires_in(as_member, expires_in):
    owner_client = as_member("super_admin")
    old = create(owner_client).json()
    body = assert_error(post_json(owner_client, f"/api/api-keys/{old['id']}/roll", {"expires_in": expires_in}),
                        400, "invalid")
    assert "expires_in" in body["errors"]
    assert ApiKey.objects.count() == 1


# --- usage ----------------------------------------------------------------------------------------------


def test_usage_counts_per_day_and_endpoint_with_last_use(as_member, client, owner, make_agent_in_org):
    owner_client = as_member("super_admin")
    body = create(owner_client, scopes=["read"]).json()
    agent_id = make_agent_in_org(owner.org)
    for _ in range(3):
        assert client.get("/api/agents", REMOTE_ADDR="203.0.113.7", **bearer(body["key"])).status_code == 200
    assert client.get(f"/api/agents/{agent_id}", REMOTE_ADDR="203.0.113.7", **bearer(body["key"])).status_code == 200
    assert post_json(client, "/api/agents", {"name": "x"}, REMOTE_ADDR="198.51.100.9",
                     **bearer(body["key"])).status_code == 403
    response = owner_client.get(f"/api/api-keys/{body['id']}/usage")
    assert response.status_code == 200
    usage = response.json()
    assert usage["total"] == 5
    assert usage["days"][-1] == {"day": clock.now().date().isoformat(), "count": 5}
    assert sum(d["count"] for d in usage["days"]) == 5
    assert usage["endpoints"] == [
        {"endpoint": "GET /api/agents", "status": 200, "count": 3},
        {"endpoint": "GET /api/agents/<str:pk>", "status": 200, "count": 1},
        {"endpoint": "POST /api/agents", "status": 403, "count": 1},
    ]
    assert usage["last_used_ip"] == "198.51.100.9"
    last = dt.datetime.fromisoformat(usage["last_used_at"].replace("Z", "+00:00"))
    assert abs((clock.now() - last).total_seconds()) < 60


@pytest.fixture
def make_agent_in_org(db):
    from twig_auth.core.context import RequestContext
    from twig_project.workspace import services

    def make(org: Any) -> str:
        return services.create_agent(org=org, name="Support", context=RequestContext.system()).pk

    return make


# --- who manages what -----------------------------------------------------------------------------------


def test_member_sees_only_own_keys_admin_sees_all_and_revokes_others(as_member, members, client):
    user_client, admin_client = as_member("user"), as_member("admin")
    mine = create(user_client, name="mine", scopes=["read"]).json()
    theirs = create(as_member("super_admin"), name="theirs").json()
    assert [k["id"] for k in user_client.get("/api/api-keys").json()] == [mine["id"]]
    assert {k["id"] for k in admin_client.get("/api/api-keys").json()} == {mine["id"], theirs["id"]}
    # a plain member cannot touch somebody else's key
    assert_error(user_client.delete(f"/api/api-keys/{theirs['id']}"), 403, "permission_denied")
    assert_error(post_json(user_client, f"/api/api-keys/{theirs['id']}/roll", {"expires_in": 0}), 403,
                 "permission_denied")
    assert_error(user_client.get(f"/api/api-keys/{theirs['id']}/usage"), 403, "permission_denied")
    assert client.get("/api/agents", **bearer(theirs["key"])).status_code == 200
    # an admin can revoke another member's key
    assert admin_client.delete(f"/api/api-keys/{mine['id']}").status_code == 204
    row = ApiKey.objects.get(pk=mine["id"])
    assert row.revoked_at is not None and row.revoked_by_id == members["admin"].user_id
    assert_error(client.get("/api/agents", **bearer(mine["key"])), 401, "invalid_api_key")
    # the member can manage their own
    own = create(user_client, name="again").json()
    assert user_client.delete(f"/api/api-keys/{own['id']}").status_code == 204


@pytest.mark.parametrize(("role", "scopes", "allowed"), [
    ("user", ["read"], True), ("user", ["execute"], True), ("user", ["read", "execute"], True),
    ("user", ["write"], False), ("user", ["admin"], False), ("user", ["read", "write"], False),
    ("manager", ["read", "write", "execute"], True), ("manager", ["admin"], False),
    ("manager", ["read", "admin"], False),
    ("admin", ["read", "write", "execute", "admin"], True), ("super_admin", ["admin"], True),
])
def test_key_scopes_cannot_exceed_the_creators_role(as_member, role, scopes, allowed):
    response = create(as_member(role), scopes=scopes)
    if allowed:
        assert response.status_code == 201, response.json()
    else:
        body = assert_error(response, 403, "permission_denied")
        assert role in body["detail"]
        assert ApiKey.objects.count() == 0


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "fields"), [
    ({"scopes": ["read"], "environment": "live"}, {"name"}),
    ({"name": "", "scopes": ["read"], "environment": "live"}, {"name"}),
    ({"name": "   ", "scopes": ["read"], "environment": "live"}, {"name"}),
    ({"name": "x", "scopes": [], "environment": "live"}, {"scopes"}),
    ({"name": "x", "environment": "live"}, {"scopes"}),
    ({"name": "x", "scopes": ["root"], "environment": "live"}, {"scopes"}),
    ({"name": "x", "scopes": ["read", "READ"], "environment": "live"}, {"scopes"}),
    ({"name": "x", "scopes": ["read"], "environment": "prod"}, {"environment"}),
    ({"name": "x", "scopes": ["read"]}, {"environment"}),
    ({"name": "x", "scopes": ["read"], "environment": "live", "expires_at": "2001-01-01T00:00:00Z"}, {"expires_at"}),
    ({"name": "x", "scopes": ["read"], "environment": "live", "expires_at": "tomorrow"}, {"expires_at"}),
    ({"name": "x", "scopes": ["read"], "environment": "live", "expires_at": "9999-01-01T00:00:00Z"}, {"expires_at"}),
    ({"name": "a\x00b", "scopes": ["read"], "environment": "live"}, {"name"}),
    ({"name": "n" * 10_000, "scopes": ["read"], "environment": "live"}, {"name"}),
    ({"name": ["x"], "scopes": ["read"], "environment": "live"}, {"name"}),
    ({"name": {"a": 1}, "scopes": ["read"], "environment": "live"}, {"name"}),
    ({"name": "x", "scopes": "read", "environment": "live"}, {"scopes"}),
    ({"name": "x", "scopes": {"read": True}, "environment": "live"}, {"scopes"}),
    ({"name": "x", "scopes": [1], "environment": "live"}, {"scopes"}),
    ({"name": "x", "scopes": [["read"]], "environment": "live"}, {"scopes"}),
    ({"name": "x", "scopes": ["read"], "environment": 1}, {"environment"}),
    ({"name": "x", "scopes": ["read"], "environment": ["live"]}, {"environment"}),
    ({"name": "x", "scopes": ["read"], "environment": "live", "expires_at": 12345}, {"expires_at"}),
    ({"name": None, "scopes": None, "environment": None}, {"name", "scopes", "environment"}),
    ({}, {"name", "scopes", "environment"}),
])
def test_bad_input_is_400_invalid_naming_each_field(as_member, data, fields):
    body = assert_error(post_json(as_member("super_admin"), "/api/api-keys", data), 400, "invalid")
    named = {name.split(".")[0] for name in body["errors"]}  # "scopes.0" names the scopes field
    assert named == fields, body
    assert all(body["errors"][name] for name in body["errors"])
    assert ApiKey.objects.count() == 0 and not AuditEvent.objects.filter(event="API_KEY_CREATED").exists()


@pytest.mark.parametrize("raw", ["[1, 2]", '"name"', "null", "{bad json", "name=x&scopes=read", ""])
def test_body_that_is_not_a_json_object_is_400_invalid(as_member, raw):
    response = post_json(as_member("super_admin"), "/api/api-keys", raw)
    body = assert_error(response, 400, "invalid")
    assert "errors" in body
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize("method", ["delete", "roll", "usage"])
def test_unknown_or_other_org_key_is_404(as_member, make_org, make_member, issue, method):
    other = make_org("globex", plan="free")
    foreign, _ = issue(make_member(other, "super_admin", email="boss@globex.test"), ["read"])
    owner_client = as_member("super_admin")
    for key_id in (foreign.pk, "key_doesnotexist00", "x" * 500, "%00", "key_%E2%80%AE"):
        path = f"/api/api-keys/{key_id}"
        if method == "delete":
            response = owner_client.delete(path)
        elif method == "roll":
            response = post_json(owner_client, path + "/roll", {"expires_in": 0})
        else:
            response = owner_client.get(path + "/usage")
        assert_error(response, 404, "not_found")
    foreign.refresh_from_db()
    assert foreign.revoked_at is None and ApiKey.objects.filter(rolled_from=foreign).count() == 0


# --- authentication errors ------------------------------------------------------------------------------


def test_no_credentials_is_401_not_authenticated_with_bearer_challenge(client, db):
    for path in ("/api/api-keys", "/api/agents"):
        response = client.get(path)
        assert_error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("header", "hint"), [
    ("{key}", "Bearer "),  # missing "Bearer "
    ("Basic {key}", "Bearer"),  # a twig key sent with the wrong scheme
    ("Token {key}", "Bearer"),
    ("Bearer  {key}", "spaces or line breaks"),
    ("Bearer {key} ", "spaces or line breaks"),
    ("Bearer Bearer {key}", '"Bearer" twice'),
    ("Bearer {head} {tail}", "whitespace"),
    ("Bearer sk_live_{body}", "twigsk_live_ or twigsk_test_"),
    ("Bearer twigsk_prod_{body}", "twigsk_live_ or twigsk_test_"),
    ("Bearer {truncated}", "wrong length"),
    ("Bearer {flipped}", "checksum"),
    ("Bearer ", 'no key after "Bearer "'),
    ("Bearer", 'no key after "Bearer "'),
])
def test_malformed_key_is_401_invalid_api_key_with_a_hint(client, issue, owner, header, hint):
    _, plaintext = issue(owner, ["read"])
    value = header.format(key=plaintext, head=plaintext[:30], tail=plaintext[30:], body=plaintext[12:],
                          truncated=plaintext[:-3], flipped=plaintext[:40] + ("a" if plaintext[40] != "a" else "b")
                          + plaintext[41:])
    response = client.get("/api/agents", HTTP_AUTHORIZATION=value)
    body = assert_error(response, 401, "invalid_api_key")
    assert hint in body["detail"], body
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert plaintext not in response.content.decode()


def test_unknown_well_formed_key_is_401_invalid_api_key(client, db):
    response = client.get("/api/agents", **bearer(key_format.generate("live").full))
    assert_error(response, 401, "invalid_api_key")
    assert response["WWW-Authenticate"].startswith("Bearer")
