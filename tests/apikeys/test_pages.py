"""Settings → API keys pages through the Django test client: list, generate, revoke, roll, usage."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone
from django.utils.html import escape

from tests.pages.conftest import HOSTILE, field_errors, text
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.services import issue_api_key

URL = "/settings/api-keys/"
KEY_RE = re.compile(r"twigsk_(?:live|test)_[0-9A-Za-z]{50}")


def api(client: Any, key: str, path: str = "/api/agents") -> Any:
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {key}")


def create(client: Any, **data: Any) -> Any:
    body = {"name": "CI pipeline", "scopes": ["read"], "environment": "live", "expires_at": ""}
    body.update(data)
    return client.post(URL, body)


def checkbox(body: str, value: str) -> str:
    match = re.search(rf'<input type="checkbox" name="scopes" value="{value}"[^>]*>', body)
    assert match, f"no {value} checkbox"
    return match.group(0)


@pytest.fixture
def member(org: Any, make_member: Any) -> Any:
    return make_member(org, "user", email="ann@acme.test")


def test_page_requires_sign_in(client: Any, db: None) -> None:
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/settings/api-keys/")


def test_page_renders_an_empty_list_and_the_form(client: Any, owner: Any, logged_in: Any) -> None:
    response = logged_in(owner.user).get(URL)

    assert response.status_code == 200
    body = text(response)
    assert "<h1>API keys</h1>" in body
    assert "No API keys yet." in body
    assert "Generate new key" in body
    assert 'name="environment" value="live"' in body and 'name="environment" value="test"' in body
    assert "no-store" in response["Cache-Control"]
    for scope in ("read", "write", "execute", "admin"):
        assert "disabled" not in checkbox(body, scope)


@pytest.mark.parametrize(("role", "enabled", "disabled"), [
    ("user", {"read", "execute"}, {"write", "admin"}),
    ("manager", {"read", "write", "execute"}, {"admin"}),
    ("admin", {"read", "write", "execute", "admin"}, set()),
])
def test_scope_checkboxes_follow_the_role(client: Any, org: Any, make_member: Any, logged_in: Any, role: str,
                                          enabled: set[str], disabled: set[str]) -> None:
    body = text(logged_in(make_member(org, role).user).get(URL))

    for scope in enabled:
        assert "disabled" not in checkbox(body, scope)
    for scope in disabled:
        assert "disabled" in checkbox(body, scope)
    if disabled:
        assert "cannot grant" in body


def test_a_crafted_post_cannot_exceed_the_role(client: Any, member: Any, logged_in: Any) -> None:
    response = create(logged_in(member.user), scopes=["read", "admin"])

    assert response.status_code == 403
    assert field_errors(response, "scopes") == ["Your role (user) cannot create keys with the admin scope."]
    assert not KEY_RE.search(text(response))
    assert not ApiKey.objects.exists()


def test_created_key_is_shown_once_and_calls_the_api(client: Any, owner: Any, logged_in: Any) -> None:
    response = create(logged_in(owner.user), scopes=["read", "execute"], environment="live")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = text(response)
    keys = set(KEY_RE.findall(body))
    assert len(keys) == 1
    plaintext = keys.pop()
    assert "it will not be shown again" in body
    assert 'data-copy-target="new-key-value"' in body and "navigator.clipboard" in body
    # Never in a header or cookie, never stored in clear.
    assert plaintext not in str(response.headers) and plaintext not in str(response.cookies)
    assert all(plaintext not in str(v) for v in client.session.values())
    key = ApiKey.objects.get()
    assert (key.name, key.scopes, key.environment, key.created_by_id) == ("CI pipeline", ["read", "execute"],
                                                                          "live", owner.pk)
    assert plaintext not in key.hashed_secret and key.prefix in body

    assert api(client, plaintext).status_code == 200
    listing = text(client.get(URL))
    assert plaintext not in listing and key.hashed_secret not in listing
    assert f"{key.prefix}…" in listing and "CI pipeline" in listing


def test_created_key_with_an_expiry(client: Any, owner: Any, logged_in: Any) -> None:
    when = timezone.localtime() + dt.timedelta(days=30)
    response = create(logged_in(owner.user), environment="test", expires_at=when.strftime("%Y-%m-%dT%H:%M"))

    assert response.status_code == 200
    key = ApiKey.objects.get()
    assert key.environment == "test" and key.expires_at == when.replace(second=0, microsecond=0)
    assert text(response).count("twigsk_test_") >= 1


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"name": ""}, "name", "This field is required."),
    ({"name": "   "}, "name", "This field is required."),
    ({"scopes": []}, "scopes", "Choose at least one scope."),
    ({"scopes": ["root"]}, "scopes", "Select a valid choice. root is not one of the available choices."),
    ({"environment": "prod"}, "environment", "Select a valid choice. prod is not one of the available choices."),
    ({"expires_at": "yesterday"}, "expires_at", "Enter a valid date/time."),
    ({"expires_at": "2001-01-01T00:00"}, "expires_at", "Choose a moment in the future (at most ten years ahead)."),
])
def test_invalid_input_is_a_field_error(client: Any, owner: Any, logged_in: Any, data: dict[str, Any], field: str,
                                        message: str) -> None:
    response = create(logged_in(owner.user), **data)

    assert response.status_code == 200
    assert field_errors(response, field) == [message]
    assert "Please fix the problems highlighted below." in text(response)
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("value", list(HOSTILE.values()) + ["n" * 10_000], ids=[*HOSTILE, "10k"])
def test_hostile_names_never_break_the_page(client: Any, owner: Any, logged_in: Any, value: str) -> None:
    response = create(logged_in(owner.user), name=value, environment=value, expires_at=value[:500])

    assert response.status_code < 500
    body = text(response)
    assert "<script>alert(1)</script>" not in body
    assert not KEY_RE.search(body)
    assert not ApiKey.objects.exists()


def test_revoke_asks_first_then_the_key_stops_working(client: Any, owner: Any, logged_in: Any) -> None:
    key, plaintext = issue_api_key(creator=owner, name="deploy bot", scopes=["read"], environment="live")
    logged_in(owner.user)
    assert api(client, plaintext).status_code == 200

    confirm = client.get(f"{URL}{key.pk}/revoke/")
    assert confirm.status_code == 200
    assert "Revoke “deploy bot”?" in text(confirm) and "stops working at once" in text(confirm)
    assert api(client, plaintext).status_code == 200  # a GET never revokes

    response = client.post(f"{URL}{key.pk}/revoke/", follow=True)
    assert response.redirect_chain == [(URL, 302)]
    assert f"“deploy bot” ({key.prefix}…) was revoked." in text(response)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert '<span class="state state--revoked">Revoked</span>' in text(response)
    denied = api(client, plaintext)
    assert denied.status_code == 401 and denied.json()["code"] == "invalid_api_key"
    # Revoking again is harmless.
    assert client.post(f"{URL}{key.pk}/revoke/").status_code == 302


@pytest.mark.parametrize(("expires_in", "old_works"), [(3600, True), (0, False)])
def test_roll_shows_the_new_key_once(client: Any, owner: Any, logged_in: Any, expires_in: int,
                                     old_works: bool) -> None:
    old, old_plaintext = issue_api_key(creator=owner, name="etl", scopes=["read"], environment="live")
    logged_in(owner.user)

    page = client.get(f"{URL}{old.pk}/roll/")
    assert page.status_code == 200
    assert 'value="0"' in text(page) and 'value="604800"' in text(page)
    response = client.post(f"{URL}{old.pk}/roll/", {"expires_in": str(expires_in)})

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new_plaintext = KEY_RE.findall(text(response))
    assert len(set(new_plaintext)) == 1 and new_plaintext[0] != old_plaintext
    assert "“etl” was rolled" in text(response)
    assert ("was revoked" in text(response)) is (not old_works)
    assert api(client, new_plaintext[0]).status_code == 200
    assert (api(client, old_plaintext).status_code == 200) is old_works
    new = ApiKey.objects.get(rolled_from=old)
    assert new.name == "etl" and new.scopes == ["read"]


def test_roll_rejects_bad_choices_and_inactive_keys(client: Any, owner: Any, logged_in: Any) -> None:
    key, _ = issue_api_key(creator=owner, name="etl", scopes=["read"], environment="live")
    logged_in(owner.user)

    for bad in ("", "-1", "99999999", "\x00", "x" * 10_000):
        response = client.post(f"{URL}{key.pk}/roll/", {"expires_in": bad})
        assert response.status_code == 200 and field_errors(response, "expires_in"), bad
    assert ApiKey.objects.count() == 1

    client.post(f"{URL}{key.pk}/revoke/")
    response = client.post(f"{URL}{key.pk}/roll/", {"expires_in": "3600"})
    assert response.status_code == 200
    assert "Only an active key can be rolled" in text(response)
    assert ApiKey.objects.count() == 1


def test_usage_page_after_some_calls(client: Any, owner: Any, logged_in: Any) -> None:
    key, plaintext = issue_api_key(creator=owner, name="metrics", scopes=["read"], environment="live")
    for _ in range(3):
        assert api(client, plaintext).status_code == 200
    assert api(client, plaintext, "/api/agents/agt_missing").status_code == 404

    response = logged_in(owner.user).get(f"{URL}{key.pk}/usage/")  # the page flushes the usage buffer

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    body = text(response)
    assert '<span class="stat__value" id="usage-total">4</span>' in body
    assert "127.0.0.1" in body
    assert body.count('class="bar-chart__bar') == 30
    assert ": 4 requests</title>" in body
    rows = re.findall(r"<code>(.*?)</code></td>\s*<td[^>]*><span[^>]*>(\d+)</span></td>\s*<td[^>]*>(\d+)</td>", body)
    assert ("GET /api/agents", "200", "3") in rows
    assert any(status == "404" and count == "1" for _, status, count in rows)
    listing = text(client.get(URL))
    assert "just now</time>" in listing  # last used


def test_usage_page_of_an_unused_key(client: Any, owner: Any, logged_in: Any) -> None:
    key, _ = issue_api_key(creator=owner, name="idle", scopes=["read"], environment="test")

    body = text(logged_in(owner.user).get(f"{URL}{key.pk}/usage/"))

    assert "No requests with this key in the last 30 days." in body
    assert '<span class="stat__value" id="usage-total">0</span>' in body


def test_admins_see_every_key_members_only_their_own(client: Any, org: Any, owner: Any, member: Any,
                                                     logged_in: Any) -> None:
    owners_key, owners_plaintext = issue_api_key(creator=owner, name="owner-key", scopes=["admin"],
                                                 environment="live")
    members_key, _ = issue_api_key(creator=member, name="member-key", scopes=["read"], environment="live")

    as_member = text(logged_in(member.user).get(URL))
    assert "member-key" in as_member and "owner-key" not in as_member and "Your keys" in as_member
    for action in ("usage", "revoke", "roll"):
        response = client.get(f"{URL}{owners_key.pk}/{action}/")
        assert response.status_code == 403, action
        assert "Only the key&#x27;s creator or an admin can manage this key." in text(response)
    assert client.post(f"{URL}{owners_key.pk}/revoke/").status_code == 403
    owners_key.refresh_from_db()
    assert owners_key.revoked_at is None and api(client, owners_plaintext).status_code == 200

    as_admin = text(logged_in(owner.user).get(URL))
    assert "member-key" in as_admin and "owner-key" in as_admin and "Organization keys" in as_admin
    assert "Created by ann@acme.test" in as_admin
    assert client.post(f"{URL}{members_key.pk}/revoke/").status_code == 302
    members_key.refresh_from_db()
    assert members_key.revoked_at is not None and members_key.revoked_by == owner.user


@pytest.mark.parametrize("key_pk", ["key_unknown", "%00", "a" * 10_000, "..", "key_%3Cscript%3E", "%E2%80%AE"])
def test_unknown_and_malformed_key_ids_are_not_found(client: Any, owner: Any, logged_in: Any, key_pk: str) -> None:
    logged_in(owner.user)
    for action in ("usage", "revoke", "roll"):
        assert client.get(f"{URL}{key_pk}/{action}/").status_code == 404
        assert client.post(f"{URL}{key_pk}/{action}/", {"expires_in": "0"}).status_code in (404, 405)


def test_another_orgs_key_is_not_found(client: Any, owner: Any, make_org: Any, make_member: Any,
                                       logged_in: Any) -> None:
    other = make_member(make_org("globex"), "super_admin")
    key, plaintext = issue_api_key(creator=other, name="globex-key", scopes=["read"], environment="live")
    logged_in(owner.user)

    for action in ("usage", "revoke", "roll"):
        assert client.get(f"{URL}{key.pk}/{action}/").status_code == 404
    assert client.post(f"{URL}{key.pk}/revoke/").status_code == 404
    assert "globex-key" not in text(client.get(URL))
    key.refresh_from_db()
    assert key.revoked_at is None and api(client, plaintext).status_code == 200


def test_usage_page_accepts_get_only(client: Any, owner: Any, logged_in: Any) -> None:
    key, _ = issue_api_key(creator=owner, name="k", scopes=["read"], environment="live")
    assert logged_in(owner.user).post(f"{URL}{key.pk}/usage/").status_code == 405


def test_a_user_without_an_organization_is_told_why(client: Any, make_user: Any, logged_in: Any) -> None:
    response = logged_in(make_user()).get(URL)

    assert response.status_code == 403
    assert "not a member of any organization" in text(response)
    assert create(client).status_code == 403
    assert not ApiKey.objects.exists()


def test_home_and_user_menu_link_to_the_page(client: Any, owner: Any, logged_in: Any) -> None:
    body = text(logged_in(owner.user).get("/"))

    assert body.count(f'<a href="{URL}">API keys</a>') == 2


def test_names_are_escaped(client: Any, owner: Any, logged_in: Any) -> None:
    issue_api_key(creator=owner, name="<b>bold</b>", scopes=["read"], environment="live")

    body = text(logged_in(owner.user).get(URL))

    assert "<b>bold</b>" not in body and escape("<b>bold</b>") in body
