"""Every audit event the contract names is written by a real flow: pages, the API, the admin, the usage flush.

One walk through the product as its users would go: each step is a request (or the usage flush a worker runs), and
each step must add the event it is about. At the end every contract event has been produced, and every chain
still verifies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.test import Client

from tests.conftest import PASSWORD
from tests.mfa.test_pages import enroll_totp
from tests.support.clients import signed_in
from twig_auth.apikeys.usage import buffer as usage_buffer
from twig_auth.audit import chain
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.core.context import RequestContext
from twig_auth.orgs import services as org_services
from twig_auth.sso.models import SsoConnection
from twig_project.workspace import services as workspace

# The contract's list (CONTRACT.md, "Audit log"), written out so a renamed event fails here.
CONTRACT = ("LOGIN_SUCCESS", "LOGIN_FAILURE", "LOGOUT", "ACCOUNT_LOCKED", "ROLE_CHANGED", "PERMISSION_GRANTED",
            "PERMISSION_REVOKED", "API_KEY_CREATED", "API_KEY_REVOKED", "API_KEY_USED", "RESOURCE_ACCESS",
            "AUTHORIZATION_DENIED", "MFA_ENROLLED", "MFA_FAILURE", "SSO_FAILURE", "IP_BLOCKED", "SESSION_REVOKED",
            "TOKEN_REUSED")


def test_every_contract_event_is_a_known_event_name():
    assert set(CONTRACT) <= set(Event.values) and len(CONTRACT) == 18


class Walk:
    def __init__(self) -> None:
        self.produced: dict[str, AuditEvent] = {}

    def step(self, event: str, flow: Callable[[], Any]) -> AuditEvent:
        """Run ``flow``; it must add at least one ``event``. Return the newest one."""
        before = AuditEvent.objects.filter(event=event).count()
        flow()
        after = AuditEvent.objects.filter(event=event)
        assert after.count() > before, f"{event} was not written by its flow"
        self.produced[event] = newest = after.latest("id")
        return newest


def json_post(client: Client, path: str, body: Any, **extra: Any) -> Any:
    return client.post(path, body, content_type="application/json", **extra)


@pytest.mark.django_db
def test_each_contract_event_is_produced_by_a_real_flow(org, owner, make_member, make_user, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_HASHER": "twig_auth.apikeys.hashers.HmacSha256KeyHasher"}
    ann = make_member(org, "user", email="ann@acme.test")
    make_member(org, "user", email="lou@acme.test")
    agent = workspace.create_agent(org=org, name="Support", config={"faq": {"refund": "5 days"}},
                                   context=RequestContext.system())
    walk = Walk()

    # --- sign-in pages -------------------------------------------------------------------------------------
    laptop, phone = Client(), Client()
    walk.step("LOGIN_FAILURE", lambda: laptop.post("/login/", {"email": "ann@acme.test", "password": "Nope-1234!"}))

    def lock_lou() -> None:
        intruder = Client(REMOTE_ADDR="198.51.100.77")
        for _ in range(10):
            intruder.post("/login/", {"email": "lou@acme.test", "password": "Wrong-Pass-1!"})
            if AuditEvent.objects.filter(event="ACCOUNT_LOCKED").exists():
                return

    walk.step("ACCOUNT_LOCKED", lock_lou)
    success = walk.step("LOGIN_SUCCESS", lambda: laptop.post("/login/", {"email": "ann@acme.test",
                                                                          "password": PASSWORD}))
    assert success.org_id == org.pk and success.user_id == ann.user_id
    assert phone.post("/login/", {"email": "ann@acme.test", "password": PASSWORD}).status_code == 302

    def end_the_phone_session() -> None:
        page = laptop.get("/settings/sessions/").content.decode()
        other = re.search(r'name="end" value="(\w+)"', page).group(1)
        assert laptop.post("/settings/sessions/", {"end": other}).status_code == 302

    walk.step("SESSION_REVOKED", end_the_phone_session)
    walk.step("LOGOUT", lambda: laptop.post("/logout/"))

    # --- tokens --------------------------------------------------------------------------------------------
    def replay_a_refresh_token() -> None:
        api = Client()
        pair = json_post(api, "/api/auth/token", {"email": "ann@acme.test", "password": PASSWORD}).json()
        assert json_post(api, "/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]}).status_code == 200
        assert json_post(api, "/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]}).status_code == 401

    walk.step("TOKEN_REUSED", replay_a_refresh_token)

    def revoke_a_token_pair() -> None:  # the token client's sign-out
        api = Client()
        pair = json_post(api, "/api/auth/token", {"email": "ann@acme.test", "password": PASSWORD}).json()
        assert json_post(api, "/api/auth/token/revoke", {"token": pair["refresh_token"]}).status_code == 200

    assert walk.step("LOGOUT", revoke_a_token_pair).details["method"] == "token_revoke"

    def sign_out_through_the_api() -> None:
        client = Client()
        assert client.post("/login/", {"email": "ann@acme.test", "password": PASSWORD}).status_code == 302
        assert client.delete("/api/auth/logout").status_code == 204

    walk.step("LOGOUT", sign_out_through_the_api)

    # --- API keys, resources -------------------------------------------------------------------------------
    owner_api = signed_in(owner)
    created: dict[str, Any] = {}

    def create_key() -> None:
        response = json_post(owner_api, "/api/api-keys", {"name": "ci", "scopes": ["read"], "environment": "live"})
        assert response.status_code == 201, response.content
        created.update(response.json())

    walk.step("API_KEY_CREATED", create_key)
    poller = Client(HTTP_AUTHORIZATION=f"Bearer {created['key']}")

    def use_key() -> None:
        assert poller.get("/api/agents").status_code == 200
        usage_buffer.flush()  # what every worker does on its timer and at exit

    walk.step("API_KEY_USED", use_key)
    read = walk.step("RESOURCE_ACCESS", lambda: poller.get(f"/api/agents/{agent.pk}"))
    assert read.target_id == agent.pk and read.details["keyId"] == created["id"]
    walk.step("API_KEY_REVOKED", lambda: owner_api.delete(f"/api/api-keys/{created['id']}"))

    # --- authorization -------------------------------------------------------------------------------------
    grant: dict[str, Any] = {}

    def grant_use() -> None:
        response = json_post(owner_api, "/api/grants", {"resource": f"agent:{agent.pk}", "action": "use",
                                                        "user": "ann@acme.test"})
        assert response.status_code == 201, response.content
        grant.update(response.json())

    walk.step("PERMISSION_GRANTED", grant_use)
    walk.step("PERMISSION_REVOKED", lambda: owner_api.delete(f"/api/grants/{grant['id']}"))
    walk.step("AUTHORIZATION_DENIED", lambda: signed_in(ann).get("/api/grants"))

    def change_role_in_the_admin() -> None:
        staff = signed_in(type("M", (), {"user": make_user("ops@example.test", is_staff=True,
                                                            is_superuser=True)})())
        url = f"/admin/twig_auth/membership/{quote(ann.pk)}/change/"
        assert staff.post(url, {"role": "manager", "attributes": "{}"}).status_code == 302

    walk.step("ROLE_CHANGED", change_role_in_the_admin)

    # --- second factors ------------------------------------------------------------------------------------
    walk.step("MFA_ENROLLED", lambda: enroll_totp(signed_in(ann)))

    def wrong_code_at_sign_in() -> None:
        client = Client()
        assert client.post("/login/", {"email": "ann@acme.test", "password": PASSWORD})["Location"] == \
            "/login/verify/"
        assert client.post("/login/verify/", {"code": "000000"}).status_code == 400

    walk.step("MFA_FAILURE", wrong_code_at_sign_in)

    # --- SSO -----------------------------------------------------------------------------------------------
    SsoConnection.objects.create(org=org, name="Okta", protocol="saml", enabled=False)
    walk.step("SSO_FAILURE", lambda: Client().get("/sso/saml/acme/login/"))

    # --- IP allowlist --------------------------------------------------------------------------------------
    org_services.update_org_settings(org=org, patch={"ipAllowlist": ["10.0.0.0/8"]}, context=RequestContext.system())
    blocked = walk.step("IP_BLOCKED", lambda: signed_in(owner).get("/api/agents", REMOTE_ADDR="203.0.113.9"))
    assert blocked.ip_address == "203.0.113.9" and blocked.org_id == org.pk

    assert set(walk.produced) == set(CONTRACT)
    for org_id, head in chain.chains():
        assert chain.verify_chain(org_id, head).ok
