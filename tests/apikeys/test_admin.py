"""API keys in the Django admin: read-only list with filters and search, a revoke action, never the hash."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.admin.utils import quote

from twig_auth.apikeys.models import ApiKey, ApiKeyUsage
from twig_auth.apikeys.services import issue_api_key
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock

CHANGELIST = "/admin/twig_auth/apikey/"


@pytest.fixture
def keys(org: Any, owner: Any, make_org: Any, make_member: Any) -> dict[str, tuple[ApiKey, str]]:
    other = make_member(make_org("globex", name="Globex"), "admin", email="gus@globex.test")
    made = {
        "live": issue_api_key(creator=owner, name="Deploy bot", scopes=["read", "write"], environment="live"),
        "test": issue_api_key(creator=owner, name="CI runner", scopes=["read"], environment="test"),
        "globex": issue_api_key(creator=other, name="Globex sync", scopes=["read"], environment="live"),
    }
    expired = made["test"][0]
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=clock.now() - dt.timedelta(hours=1))
    return made


@pytest.fixture
def admin_client(client: Any, make_user: Any, logged_in: Any) -> Any:
    return logged_in(make_user(email="root@example.test", is_staff=True, is_superuser=True))


def names(response: Any) -> set[str]:
    body = response.content.decode()
    return {n for n in ("Deploy bot", "CI runner", "Globex sync") if n in body}


def test_changelist_shows_keys_without_their_hash(admin_client: Any, keys: Any) -> None:
    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    body = response.content.decode()
    assert names(response) == {"Deploy bot", "CI runner", "Globex sync"}
    for key, plaintext in keys.values():
        stored = ApiKey.objects.get(pk=key.pk).hashed_secret
        assert stored not in body and plaintext not in body and key.prefix in body
    for column in ("Key prefix", "Org", "Created by", "Environment", "State", "Created at", "Last used at"):
        assert column in body
    assert "owner@acme.test" in body and "Expired" in body and "Active" in body
    assert "Add API key" not in body and "/admin/twig_auth/apikey/add/" not in body


def test_change_page_is_read_only_and_never_shows_the_hash(admin_client: Any, keys: Any) -> None:
    key, plaintext = keys["live"]
    response = admin_client.get(f"{CHANGELIST}{quote(key.pk)}/change/")

    assert response.status_code == 200
    body = response.content.decode()
    assert ApiKey.objects.get(pk=key.pk).hashed_secret not in body and plaintext not in body
    assert "hashed_secret" not in body and "Hashed secret" not in body
    assert "Deploy bot" in body and f"{key.prefix}…" in body
    assert 'name="name"' not in body  # no editable inputs
    assert admin_client.post(f"{CHANGELIST}{quote(key.pk)}/change/", {"name": "renamed"}).status_code == 403
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}{quote(key.pk)}/delete/", {"post": "yes"}).status_code == 403
    assert ApiKey.objects.get(pk=key.pk).name == "Deploy bot"


@pytest.mark.parametrize(("query", "expected"), [
    ("environment__exact=test", {"CI runner"}),
    ("environment__exact=live", {"Deploy bot", "Globex sync"}),
    ("state=expired", {"CI runner"}),
    ("state=active", {"Deploy bot", "Globex sync"}),
    ("state=revoked", set()),
    ("q=deploy", {"Deploy bot"}),
])
def test_filters_and_search(admin_client: Any, keys: Any, query: str, expected: set[str]) -> None:
    response = admin_client.get(f"{CHANGELIST}?{query}")

    assert response.status_code == 200
    assert names(response) == expected


def test_filter_by_org_and_search_by_key_id(admin_client: Any, keys: Any) -> None:
    globex = keys["globex"][0]
    assert names(admin_client.get(f"{CHANGELIST}?org__id__exact={globex.org_id}")) == {"Globex sync"}
    assert names(admin_client.get(f"{CHANGELIST}?q={globex.key_id}")) == {"Globex sync"}


def test_revoke_action_revokes_through_the_service(admin_client: Any, keys: Any) -> None:
    live, plaintext = keys["live"]
    globex, _ = keys["globex"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}
    assert admin_client.get("/api/agents", **auth).status_code == 200

    response = admin_client.post(CHANGELIST, {"action": "revoke_selected", "_selected_action": [live.pk, globex.pk]},
                                 follow=True)

    assert response.status_code == 200
    assert "Revoked 2 keys." in response.content.decode()
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 2
    assert AuditEvent.objects.filter(event="API_KEY_REVOKED", target_id=live.pk).count() == 1
    denied = admin_client.get("/api/agents", **auth)
    assert denied.status_code == 401 and denied.json()["code"] == "invalid_api_key"
    assert names(admin_client.get(f"{CHANGELIST}?state=revoked")) == {"Deploy bot", "Globex sync"}

    again = admin_client.post(CHANGELIST, {"action": "revoke_selected", "_selected_action": [live.pk]}, follow=True)
    assert "already revoked" in again.content.decode()


def test_usage_rows_are_read_only(admin_client: Any, keys: Any) -> None:
    key, _ = keys["live"]
    ApiKeyUsage.objects.create(key=key, day=clock.now().date(), endpoint="GET /api/agents", status=200, count=7)

    listing = admin_client.get(f"/admin/twig_auth/apikeyusage/?key__id__exact={key.pk}")
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "GET /api/agents" in body and ApiKey.objects.get(pk=key.pk).hashed_secret not in body
    assert admin_client.get("/admin/twig_auth/apikeyusage/add/").status_code == 403
    detail = admin_client.get(f"{CHANGELIST}{quote(key.pk)}/change/").content.decode()
    assert f"/admin/twig_auth/apikeyusage/?key__id__exact={key.pk}" in detail


def test_staff_without_permission_cannot_see_keys(client: Any, make_user: Any, logged_in: Any, keys: Any) -> None:
    logged_in(make_user(is_staff=True))
    assert client.get(CHANGELIST).status_code == 403
