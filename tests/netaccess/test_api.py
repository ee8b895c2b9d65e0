"""The API answers 403 ``ip_not_allowed`` for every credential of an org outside its allowlist (API key, access
token, session), writes one IP_BLOCKED event per (org, IP, credential) and then coalesces; per-key lists on
creation and listing, and a change takes effect at once; the org settings PATCH names ``ipAllowlist``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.services import issue_api_key, set_allowed_ips
from twig_auth.audit.models import AuditEvent
from twig_auth.core.context import RequestContext
from twig_auth.mfa import stepup
from twig_auth.netaccess import enforce
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Membership, Organization

INSIDE = "198.51.100.7"
OUTSIDE = "203.0.113.9"


@pytest.fixture(autouse=True)
def _setup(settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_BCRYPT_ROUNDS": 4}
    enforce.forget()


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def post_json(client: Client, path: str, data: Any, **extra: Any) -> Any:
    return client.post(path, json.dumps(data), content_type="application/json", **extra)


def patch_json(client: Client, path: str, data: Any, **extra: Any) -> Any:
    return client.patch(path, json.dumps(data), content_type="application/json", **extra)


def assert_ip_not_allowed(response: Any, ip: str = OUTSIDE) -> None:
    assert response.status_code == 403, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "ip_not_allowed" and ip in body["detail"], body


def blocked(org: Organization) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event="IP_BLOCKED", org=org))


def set_list(org: Organization, cidrs: list[str]) -> None:
    org_services.update_org_settings(org=org, patch={"ipAllowlist": cidrs})


@pytest.fixture
def key(owner: Membership) -> tuple[ApiKey, str]:
    return issue_api_key(creator=owner, name="ci", scopes=["read", "admin"], environment="live")


def test_api_key_outside_the_org_list_is_403_and_audited_once(client, org, owner, key):
    set_list(org, ["198.51.100.0/24"])
    row, secret = key
    assert client.get("/api/agents", REMOTE_ADDR=INSIDE, **bearer(secret)).status_code == 200
    for _ in range(3):
        assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR=OUTSIDE, HTTP_USER_AGENT="bot/1", **bearer(secret)))
    [event] = blocked(org)
    assert (event.ip_address, event.user_id, event.user_agent) == (OUTSIDE, owner.user_id, "bot/1")
    assert event.details == {"credential": "api_key", "blocked_by": "org", "path": "/api/agents", "method": "GET",
                             "key_id": row.key_id}
    assert secret not in json.dumps(event.as_record())


def test_access_token_outside_the_org_list_is_403(client, org, owner):
    set_list(org, ["198.51.100.0/24"])
    # POST /api/auth/token is a password sign-in, not a credential of the org yet; the token it returns is
    # checked on every request.
    pair = post_json(client, "/api/auth/token", {"email": "owner@acme.test", "password": PASSWORD},
                     REMOTE_ADDR=OUTSIDE)
    assert pair.status_code == 200, pair.content
    token = pair.json()["access_token"]
    assert client.get("/api/agents", REMOTE_ADDR=INSIDE, **bearer(token)).status_code == 200
    assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR=OUTSIDE, **bearer(token)))
    assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR=OUTSIDE, **bearer(token)))
    [event] = blocked(org)
    assert event.details["credential"] == "access_token" and event.user_id == owner.user_id


def test_session_outside_the_org_list_is_403_json(client, org, owner, logged_in):
    set_list(org, ["198.51.100.0/24"])
    logged_in(owner.user)
    assert client.get("/api/agents", REMOTE_ADDR=INSIDE).status_code == 200
    assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR=OUTSIDE))
    assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR=OUTSIDE))
    [event] = blocked(org)
    assert event.details["credential"] == "session"


def test_signing_out_over_the_api_works_from_a_blocked_network(client, org, owner, logged_in):
    set_list(org, ["198.51.100.0/24"])
    logged_in(owner.user)
    assert client.delete("/api/auth/logout", REMOTE_ADDR=OUTSIDE).status_code in (200, 204)
    assert not blocked(org)  # nothing was refused, so nothing is recorded as blocked
    assert client.get("/api/agents", REMOTE_ADDR=INSIDE).status_code == 401  # the session really ended


def test_ipv6_and_spoofed_headers_through_the_api(client, org, key, settings):
    set_list(org, ["2001:db8:1:2::/64"])
    _, secret = key
    assert client.get("/api/agents", REMOTE_ADDR="2001:db8:1:2::99", **bearer(secret)).status_code == 200
    spoofed = client.get("/api/agents", REMOTE_ADDR="2001:db8:1:3::1", HTTP_X_FORWARDED_FOR="2001:db8:1:2::1",
                         **bearer(secret))
    assert_ip_not_allowed(spoofed, "2001:db8:1:3::1")
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "TRUSTED_PROXIES": 1}
    assert client.get("/api/agents", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="2001:db8:1:2::1",
                      **bearer(secret)).status_code == 200


def test_other_orgs_keys_from_the_same_address_are_unaffected(client, org, make_org, make_member):
    other = make_org("globex")
    someone = make_member(other, "admin")
    set_list(org, ["198.51.100.0/24"])
    _, secret = issue_api_key(creator=someone, name="x", scopes=["read"], environment="live")
    assert client.get("/api/agents", REMOTE_ADDR=OUTSIDE, **bearer(secret)).status_code == 200
    assert not AuditEvent.objects.filter(event="IP_BLOCKED").exists()


def test_a_per_key_list_narrower_than_the_org_list(client, org, owner):
    set_list(org, ["198.51.100.0/24"])
    _, secret = issue_api_key(creator=owner, name="ci", scopes=["read"], environment="live",
                              allowed_ips=["198.51.100.7/32"])
    assert client.get("/api/agents", REMOTE_ADDR="198.51.100.7", **bearer(secret)).status_code == 200
    assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR="198.51.100.8", **bearer(secret)), "198.51.100.8")
    assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR=OUTSIDE, **bearer(secret)))
    assert sorted(e.details["blocked_by"] for e in blocked(org)) == ["api_key", "org"]


def test_a_key_list_alone(client, org, owner):
    _, secret = issue_api_key(creator=owner, name="ci", scopes=["read"], environment="live",
                              allowed_ips=[" 2001:db8::/32 ", "198.51.100.0/24"])
    assert ApiKey.objects.get().allowed_ips == ["2001:db8::/32", "198.51.100.0/24"]
    assert client.get("/api/agents", REMOTE_ADDR="2001:db8::5", **bearer(secret)).status_code == 200
    response = client.get("/api/agents", REMOTE_ADDR=OUTSIDE, **bearer(secret))
    assert_ip_not_allowed(response)
    assert "API key" in response.json()["detail"]


def admin_client(owner: Membership) -> Client:
    client = Client()
    client.force_login(owner.user, backend="twig_auth.passwords.backends.EmailBackend")
    session = client.session
    stepup.mark_verified(session)
    session.save()
    return client


def test_create_and_list_allowed_ips_through_the_api_and_a_change_applies_at_once(org, owner):
    client = admin_client(owner)
    created = post_json(client, "/api/api-keys", {"name": "ci", "scopes": ["read"], "environment": "live",
                                                  "allowedIps": ["198.51.100.0/24"]})
    assert created.status_code == 201, created.content
    body = created.json()
    [listed] = client.get("/api/api-keys").json()
    assert listed["allowedIps"] == ["198.51.100.0/24"]
    secret = body["key"]
    assert client.get("/api/agents", REMOTE_ADDR="198.51.100.1", **bearer(secret)).status_code == 200  # cached now
    assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR=OUTSIDE, **bearer(secret)))
    row = ApiKey.objects.get(pk=body["id"])
    set_allowed_ips(key=row, allowed_ips=[f"{OUTSIDE}/32"], context=RequestContext(actor=owner.user))
    # the cached verification was dropped: the new list applies on the very next request
    assert client.get("/api/agents", REMOTE_ADDR=OUTSIDE, **bearer(secret)).status_code == 200
    assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR="198.51.100.1", **bearer(secret)), "198.51.100.1")
    [event] = AuditEvent.objects.filter(event="API_KEY_UPDATED")
    assert event.details["allowed_ips"] == [f"{OUTSIDE}/32"] and event.details["previous"] == ["198.51.100.0/24"]
    set_allowed_ips(key=row, allowed_ips=[], context=RequestContext(actor=owner.user))
    assert client.get("/api/agents", REMOTE_ADDR="192.0.2.1", **bearer(secret)).status_code == 200


@pytest.mark.parametrize("value", [["10.0.0.0/33"], ["nope"], "10.0.0.0/8", [5], [None], {"a": 1}, ["1.2.3.4"] * 501])
def test_bad_allowed_ips_are_400_naming_allowedIps(org, owner, value):
    client = admin_client(owner)
    response = post_json(client, "/api/api-keys", {"name": "ci", "scopes": ["read"], "environment": "live",
                                                   "allowedIps": value})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and list(body["errors"]) == ["allowedIps"], body
    assert not ApiKey.objects.exists()


def test_per_key_lists_need_the_enterprise_plan(make_org, make_member):
    free = make_org("free-co", plan="free")
    admin = make_member(free, "super_admin")
    client = admin_client(admin)
    response = post_json(client, "/api/api-keys", {"name": "ci", "scopes": ["read"], "environment": "live",
                                                   "allowedIps": ["198.51.100.0/24"]})
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert response.json()["fields"] == ["allowedIps"]
    ok = post_json(client, "/api/api-keys", {"name": "ci", "scopes": ["read"], "environment": "live",
                                             "allowedIps": []})
    assert ok.status_code == 201


def test_a_rolled_key_keeps_its_list(client, org, owner):
    row, _ = issue_api_key(creator=owner, name="ci", scopes=["read"], environment="live",
                           allowed_ips=["198.51.100.0/24"])
    rolled = post_json(admin_client(owner), f"/api/api-keys/{row.pk}/roll", {"expires_in": 0})
    assert rolled.status_code == 201, rolled.content
    assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR=OUTSIDE, **bearer(rolled.json()["key"])))


@pytest.mark.parametrize("value", [["10.0.0.0/33"], ["example.com"], "10.0.0.0/8", [1]])
def test_org_settings_patch_with_a_bad_range_is_400_naming_ipAllowlist(org, owner, value):
    response = patch_json(admin_client(owner), "/api/org/settings", {"ipAllowlist": value})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and "ipAllowlist" in body["errors"], body


def test_org_settings_patch_sets_the_list_and_it_applies_at_once(client, org, owner, key):
    _, secret = key
    response = patch_json(client, "/api/org/settings", {"ipAllowlist": ["198.51.100.0/24"]}, REMOTE_ADDR=INSIDE,
                          **bearer(secret))
    assert response.status_code == 200, response.content
    assert_ip_not_allowed(client.get("/api/agents", REMOTE_ADDR=OUTSIDE, **bearer(secret)))
    # break glass from an allowed address: clearing the list lets everyone back in
    assert patch_json(client, "/api/org/settings", {"ipAllowlist": []}, REMOTE_ADDR=INSIDE,
                      **bearer(secret)).status_code == 200
    assert client.get("/api/agents", REMOTE_ADDR=OUTSIDE, **bearer(secret)).status_code == 200
