"""A key acts as its creator narrowed by its scopes: never beyond the creator's role, never outliving the
membership, and ``request.user`` is the creator, loaded only when needed."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory
from rest_framework.request import Request

from twig_auth.apikeys.scopes import ALL_SCOPES, ROLE_SCOPES
from twig_auth.apikeys.services import issue_api_key
from twig_auth.apikeys.verification import authenticate_key
from twig_auth.contrib.rest_framework.authentication import ApiKeyAuthentication, LazyUser
from twig_auth.exceptions import InvalidApiKey, PermissionDenied
from twig_auth.orgs import services as org_services

from .conftest import bearer, sql_of


@pytest.fixture(autouse=True)
def _fast(fast_bcrypt: None) -> None:
    """bcrypt cost 4: these tests are about rules, not hash cost."""


@pytest.mark.parametrize("role", ["user", "manager", "admin", "super_admin"])
@pytest.mark.parametrize("scope", ALL_SCOPES)
def test_key_scope_never_exceeds_the_creators_role(org, owner, make_member, role, scope):
    creator = owner if role == "super_admin" else make_member(org, role)
    if scope in ROLE_SCOPES[role]:
        key, _ = issue_api_key(creator=creator, name="k", scopes=[scope], environment="live")
        assert key.scopes == [scope]
    else:
        with pytest.raises(PermissionDenied, match=scope):
            issue_api_key(creator=creator, name="k", scopes=[scope], environment="live")
        assert not creator.api_keys.exists()


def test_role_scope_table_matches_the_contract():
    assert {"user": {"read", "execute"}, "manager": {"read", "write", "execute"},
                           "admin": set(ALL_SCOPES), "super_admin": set(ALL_SCOPES)} == ROLE_SCOPES


def test_key_stops_working_when_its_creator_leaves_even_when_warm(client, org, owner, make_member, issue):
    admin = make_member(org, "admin")
    key, plaintext = issue(admin, ["read", "admin"])
    assert client.get("/api/agents", **bearer(plaintext)).status_code == 200
    assert client.get("/api/agents", **bearer(plaintext)).status_code == 200  # warm
    org_services.remove_member(membership=admin)
    response = client.get("/api/agents", **bearer(plaintext))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"
    assert "no longer a member" in response.json()["detail"]
    key.refresh_from_db()
    assert key.created_by_id is None
    # and stays refused (negative entry, then the row again)
    assert client.get("/api/agents", **bearer(plaintext)).status_code == 401


def test_key_stops_working_when_its_creator_leaves_and_the_commit_hook_runs(
        client, org, owner, make_member, issue, django_capture_on_commit_callbacks):
    admin = make_member(org, "admin")
    _, plaintext = issue(admin, ["read"])
    assert client.get("/api/agents", **bearer(plaintext)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        org_services.remove_member(membership=admin)
    assert callbacks  # the after-commit invalidation is registered
    with pytest.raises(InvalidApiKey):
        authenticate_key(plaintext)


@pytest.mark.parametrize(("role", "scopes", "demoted_to", "works"), [
    ("manager", ["read", "write"], "user", False),
    ("admin", ["admin"], "manager", False),
    ("admin", ["read", "write"], "manager", True),
    ("admin", ["read", "execute"], "user", True),
    ("manager", ["execute"], "user", True),
])
def test_demotion_below_the_keys_scopes_stops_it_at_once(client, org, owner, make_member, issue, role, scopes,
                                                         demoted_to, works):
    creator = make_member(org, role)
    _, plaintext = issue(creator, scopes)
    assert authenticate_key(plaintext).role == role  # warm, with the old role
    org_services.change_role(membership=creator, role=demoted_to)
    if works:
        assert authenticate_key(plaintext).role == demoted_to  # the cached role was refreshed
        if "read" in scopes:
            assert client.get("/api/interactions", **bearer(plaintext)).status_code == 200
    else:
        with pytest.raises(InvalidApiKey, match="no longer has a role"):
            authenticate_key(plaintext)
        response = client.get("/api/agents", **bearer(plaintext))
        assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"


def test_demoted_key_acts_with_the_new_role(client, org, owner, make_member, issue):
    """An admin's read+write key keeps working after demotion to manager, and the role is the manager's:
    org settings (admin role) are now refused although the key is not scoped for them anyway."""
    creator = make_member(org, "admin")
    _, plaintext = issue(creator, ["read", "write", "execute"])
    assert client.post("/api/agents", {"name": "a"}, content_type="application/json",
                       **bearer(plaintext)).status_code == 201
    org_services.change_role(membership=creator, role="manager")
    assert client.post("/api/agents", {"name": "b"}, content_type="application/json",
                       **bearer(plaintext)).status_code == 201
    org_services.change_role(membership=creator, role="user")  # below write: the key is refused
    response = client.post("/api/agents", {"name": "c"}, content_type="application/json", **bearer(plaintext))
    assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"


def test_request_user_is_the_creator_loaded_lazily(org, owner, make_member, issue, django_assert_num_queries):
    creator = make_member(org, "manager", email="creator@acme.test")
    _, plaintext = issue(creator, ["read"])
    authenticate_key(plaintext)  # warm
    request = Request(RequestFactory().get("/api/agents", **bearer(plaintext)))
    with django_assert_num_queries(0):
        user, principal = ApiKeyAuthentication().authenticate(request)
        assert isinstance(user, LazyUser)
        assert user.pk == user.id == creator.user_id
        assert user.is_authenticated and not user.is_anonymous
        assert principal.membership.pk == creator.pk and principal.membership.role == "manager"
        assert principal.membership.has_role("manager") and not principal.membership.has_role("admin")
    with django_assert_num_queries(1):
        assert user.email == "creator@acme.test"
    with django_assert_num_queries(0):
        assert user.email == "creator@acme.test"


def test_warm_api_request_runs_no_user_query(client, org, owner, issue, django_assert_max_num_queries):
    _, plaintext = issue(owner, ["read"])
    assert client.get("/api/agents", **bearer(plaintext)).status_code == 200
    with django_assert_max_num_queries(5) as captured:
        assert client.get("/api/agents", **bearer(plaintext)).status_code == 200
    from_tables = [re.search(r'FROM "(\w+)"', sql).group(1) for sql in sql_of(captured)]
    assert "users" not in from_tables and "twig_memberships" not in from_tables, sql_of(captured)


def test_creator_is_the_actor_of_what_the_key_does(client, org, owner, make_member, issue):
    creator = make_member(org, "manager", email="maker@acme.test")
    _, plaintext = issue(creator, ["write", "read"])
    response = client.post("/api/agents", {"name": "By key"}, content_type="application/json", **bearer(plaintext))
    assert response.status_code == 201
    assert response.json()["created_by"] == "maker@acme.test"
