"""Per-org member deactivation: the services (guards, audit, signals), and every credential path refusing a
deactivated member (web session pages and API, org switch, password login, access tokens obtain/use/refresh,
API keys warm and cold, SSO, the authz backend and member facts), and all of it undone by reactivation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.apikeys.conftest import bearer as key_bearer
from tests.conftest import PASSWORD
from tests.support.clients import signed_in
from tests.tokens.conftest import assert_error, bearer, post_json
from twig_auth import signals
from twig_auth.apikeys.services import issue_api_key
from twig_auth.audit.models import AuditEvent
from twig_auth.authz.members import member_facts
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict, PermissionDenied
from twig_auth.orgs import services as org_services
from twig_auth.orgs.active import SESSION_KEY
from twig_auth.orgs.models import Membership
from twig_auth.tokens.models import RefreshToken

pytestmark = pytest.mark.django_db

TOKEN = "/api/auth/token"
REFRESH = "/api/auth/token/refresh"


@pytest.fixture(autouse=True)
def _fast_keys(settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_BCRYPT_ROUNDS": 4}


@pytest.fixture
def admin(org: Any, owner: Any, make_member: Any) -> Membership:
    return make_member(org, "admin", email="admin@acme.test")


@pytest.fixture
def bob(org: Any, owner: Any, make_member: Any) -> Membership:
    return make_member(org, "user", email="bob@acme.test")


def ctx(membership: Membership) -> RequestContext:
    return RequestContext(actor=membership.user, ip="203.0.113.7", user_agent="pytest")


def deactivate(member: Membership, by: Membership | None = None) -> Membership:
    return org_services.deactivate_member(membership=member, context=ctx(by) if by else None)


def reactivate(member: Membership, by: Membership | None = None) -> Membership:
    return org_services.reactivate_member(membership=member, context=ctx(by) if by else None)


# --- the services ------------------------------------------------------------------------------------------------

def test_deactivation_is_audited_signalled_and_reversible(org, admin, bob):
    seen: list[tuple[str, Any]] = []

    def on_off(sender: Any, membership: Any, reason: str, **kw: Any) -> None:
        seen.append(("off", reason))

    def on_on(sender: Any, membership: Any, **kw: Any) -> None:
        seen.append(("on", membership.pk))

    signals.member_deactivated.connect(on_off)
    signals.member_reactivated.connect(on_on)
    try:
        deactivate(bob, by=admin)
        row = Membership.objects.get(pk=bob.pk)
        assert row.deactivated_at is not None and row.deactivation_reason == "manual" and row.is_deactivated
        event = AuditEvent.objects.get(event="MEMBER_DEACTIVATED")
        assert (event.org_id, event.user_id, event.ip_address) == (org.pk, admin.user_id, "203.0.113.7")
        assert event.details == {"member": "bob@acme.test", "role": "user", "reason": "manual"}
        assert event.target_id == str(bob.pk)
        reactivate(bob, by=admin)
        row.refresh_from_db()
        assert row.deactivated_at is None and row.deactivation_reason == "" and row.reactivated_at is not None
        back = AuditEvent.objects.get(event="MEMBER_REACTIVATED")
        assert back.details["member"] == "bob@acme.test" and back.details["reason"] == "manual"
    finally:
        signals.member_deactivated.disconnect(on_off)
        signals.member_reactivated.disconnect(on_on)
    assert seen == [("off", "manual"), ("on", bob.pk)]


def test_groups_grants_and_keys_survive_a_deactivation(org, admin, bob):
    from twig_auth.authz.models import Grant

    group = org_services.create_group(org=org, name="Support")
    org_services.add_to_group(group=group, membership=bob)
    Grant.objects.create(org=org, resource_type="agent", resource_id="*", action="use", user=bob.user,
                         created_at=clock.now())
    key, _ = issue_api_key(creator=bob, name="ci", scopes=["read"], environment="live")
    deactivate(bob, by=admin)
    reactivate(bob, by=admin)
    assert list(bob.groups.all()) == [group]
    assert Grant.objects.filter(user=bob.user).count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None and key.created_by_id == bob.pk


def test_guards(org, owner, admin, bob, make_member):
    with pytest.raises(PermissionDenied, match="yourself"):
        deactivate(admin, by=admin)
    with pytest.raises(PermissionDenied, match="above your own"):
        deactivate(owner, by=admin)  # an admin cannot touch a super admin
    with pytest.raises(Conflict, match="at least one super admin"):
        deactivate(owner)  # not even an operator: the org's last active super admin
    manager = make_member(org, "manager")
    with pytest.raises(PermissionDenied):
        deactivate(bob, by=manager)
    deactivate(bob, by=admin)
    with pytest.raises(Conflict, match="already"):
        deactivate(bob, by=admin)
    with pytest.raises(PermissionDenied):
        reactivate(bob, by=manager)
    reactivate(bob, by=admin)
    with pytest.raises(Conflict, match="not deactivated"):
        reactivate(bob, by=admin)
    assert AuditEvent.objects.filter(event="MEMBER_DEACTIVATED").count() == 1


def test_a_deactivated_super_admin_does_not_count_as_the_one_the_org_keeps(org, owner, make_member):
    second = make_member(org, "super_admin", email="second@acme.test")
    deactivate(second, by=owner)
    with pytest.raises(Conflict):
        org_services.change_role(membership=owner, role="admin", context=ctx(owner))
    with pytest.raises(Conflict):
        org_services.remove_member(membership=owner, context=ctx(owner))
    reactivate(second, by=owner)
    org_services.change_role(membership=owner, role="admin", context=ctx(second))


def test_a_deactivated_admin_cannot_manage_members(org, owner, admin, bob):
    deactivate(admin, by=owner)
    with pytest.raises(PermissionDenied):
        org_services.change_role(membership=bob, role="manager", context=ctx(admin))


# --- web sessions --------------------------------------------------------------------------------------------------

def test_a_deactivated_members_session_no_longer_acts_in_the_org(org, admin, bob):
    client = signed_in(bob)
    assert client.get("/api/agents").status_code == 200
    assert client.get("/").context["membership"].pk == bob.pk
    deactivate(bob, by=admin)
    assert_error(client.get("/api/agents"), 403, "permission_denied")
    assert client.get("/").context["membership"] is None
    reactivate(bob, by=admin)
    assert client.get("/api/agents").status_code == 200


def test_a_session_falls_back_to_another_org_and_cannot_switch_back(org, admin, bob, make_org):
    other = make_org("globex")
    org_services.add_member(org=other, user=bob.user)
    client = signed_in(bob)
    assert client.post("/organizations/choose/", {"org": org.pk}).status_code == 302
    deactivate(bob, by=admin)
    assert client.get("/").context["membership"].org_id == other.pk
    assert client.session[SESSION_KEY] == other.pk
    page = client.get("/organizations/choose/")
    assert [m.org_id for m in page.context["memberships"]] == [other.pk]
    refused = client.post("/organizations/choose/", {"org": org.pk})
    assert refused.status_code == 403 and "deactivated" in refused.content.decode()
    assert client.session[SESSION_KEY] == other.pk


def test_password_login_does_not_enter_a_deactivated_org_and_notes_the_login(org, admin, bob, make_org):
    other = make_org("globex")
    org_services.add_member(org=other, user=bob.user)
    deactivate(bob, by=admin)
    client = Client()
    response = client.post("/login/", {"email": "bob@acme.test", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == other.pk  # one active org left: entered without a chooser
    assert Membership.objects.get(org=other, user=bob.user).last_login_at is not None
    assert Membership.objects.get(pk=bob.pk).last_login_at is None
    event = AuditEvent.objects.filter(event="LOGIN_SUCCESS").get()
    assert event.org_id == other.pk


# --- access tokens ----------------------------------------------------------------------------------------------

def test_access_tokens_stop_at_once_and_refresh_and_obtain_are_refused(org, admin, bob, client):
    pair = post_json(client, TOKEN, {"email": "bob@acme.test", "password": PASSWORD}).json()
    assert client.get("/api/agents", **bearer(pair["access_token"])).status_code == 200
    assert Membership.objects.get(pk=bob.pk).last_login_at is not None
    deactivate(bob, by=admin)
    assert_error(client.get("/api/agents", **bearer(pair["access_token"])), 401, "invalid_token")
    assert_error(post_json(client, REFRESH, {"refresh_token": pair["refresh_token"]}), 401, "invalid_token")
    assert not RefreshToken.objects.filter(membership=bob, revoked_at__isnull=True).exists()
    body = assert_error(post_json(client, TOKEN, {"email": "bob@acme.test", "password": PASSWORD, "org": "acme"}),
                        403, "permission_denied")
    assert "deactivated" in body["detail"]
    assert_error(post_json(client, TOKEN, {"email": "bob@acme.test", "password": PASSWORD}), 403,
                 "permission_denied")
    reactivate(bob, by=admin)
    assert_error(client.get("/api/agents", **bearer(pair["access_token"])), 401, "invalid_token")  # stays revoked
    fresh = post_json(client, TOKEN, {"email": "bob@acme.test", "password": PASSWORD}).json()
    assert client.get("/api/agents", **bearer(fresh["access_token"])).status_code == 200


def test_a_refresh_racing_a_deactivation_is_refused(org, admin, bob, client):
    """The family revocation is the first line; the refresh itself checks the membership too (a refresh row
    written by a refresh that committed after the revocation swept the family)."""
    pair = post_json(client, TOKEN, {"email": "bob@acme.test", "password": PASSWORD}).json()
    Membership.objects.filter(pk=bob.pk).update(deactivated_at=clock.now())  # no signal: no family revocation
    assert_error(post_json(client, REFRESH, {"refresh_token": pair["refresh_token"]}), 401, "invalid_token")
    assert RefreshToken.objects.filter(membership=bob).count() == 1
    assert RefreshToken.objects.get(membership=bob).revoked_at is not None


# --- API keys ---------------------------------------------------------------------------------------------------

def test_api_keys_of_a_deactivated_member_stop_even_when_cached(org, admin, bob, client):
    _, plaintext = issue_api_key(creator=bob, name="ci", scopes=["read"], environment="live")
    assert client.get("/api/agents", **key_bearer(plaintext)).status_code == 200  # cached now
    deactivate(bob, by=admin)
    body = assert_error(client.get("/api/agents", **key_bearer(plaintext)), 401, "invalid_api_key")
    assert "deactivated" in body["detail"]
    assert_error(client.get("/api/agents", **key_bearer(plaintext)), 401, "invalid_api_key")  # remembered
    reactivate(bob, by=admin)  # drops the remembered refusal
    assert client.get("/api/agents", **key_bearer(plaintext)).status_code == 200


def test_a_key_verified_on_the_database_path_checks_deactivation(org, admin, bob, client, monkeypatch):
    from twig_auth.core import outage

    _, plaintext = issue_api_key(creator=bob, name="ci", scopes=["read"], environment="live")
    monkeypatch.setattr(outage, "redis_available", lambda: False)
    assert client.get("/api/agents", **key_bearer(plaintext)).status_code == 200
    Membership.objects.filter(pk=bob.pk).update(deactivated_at=clock.now())
    assert_error(client.get("/api/agents", **key_bearer(plaintext)), 401, "invalid_api_key")


# --- SSO, authz backend, member facts ------------------------------------------------------------------------------

def test_sso_does_not_sign_a_deactivated_member_in(org, admin, bob, settings):
    from twig_auth.sso.models import SsoConnection, SsoDomain

    settings.ROOT_URLCONF = "tests.sso.sso_urls"
    SsoDomain.objects.create(org=org, domain="acme.test", verified_at=clock.now())
    connection = SsoConnection.objects.create(org=org, name="Okta", protocol="saml", enabled=True)
    deactivate(bob, by=admin)
    client = Client()
    response = client.post(f"/test-sso/{connection.pk}/complete/", json.dumps({"email": "bob@acme.test"}),
                           content_type="application/json")
    assert response.status_code in (401, 403) and "_auth_user_id" not in client.session
    failure = AuditEvent.objects.get(event="SSO_FAILURE")
    assert failure.details["reason"] == "membership_refused" and "deactivated" in failure.details["detail"]
    reactivate(bob, by=admin)
    assert client.post(f"/test-sso/{connection.pk}/complete/", json.dumps({"email": "bob@acme.test"}),
                       content_type="application/json").status_code == 302


def test_the_authz_backend_and_member_facts_see_no_member(org, admin, bob):
    from twig_auth.apikeys.verification import KeyPrincipal
    from twig_auth.authz.members import invalidate

    assert bob.user.has_perm("twig_auth.org.view", org)
    principal = KeyPrincipal(id="k", key_id="kid", org_id=org.pk, membership_id=bob.pk, user_id=bob.user_id,
                             role="user", scopes=frozenset({"read"}), environment="live", expires_at=None, name="k")
    assert member_facts(principal.membership) is not None
    deactivate(bob, by=admin)
    invalidate()  # a new request
    assert member_facts(principal.membership) is None  # the snapshot was dropped with the row's save
    assert member_facts(Membership.objects.get(pk=bob.pk)) is None
    user = type(bob.user).objects.get(pk=bob.user_id)
    assert not user.has_perm("twig_auth.org.view", org)


# --- the Django admin -------------------------------------------------------------------------------------------

def test_the_admin_deactivates_and_reactivates_through_the_services(client, make_user, stepped_up, org, owner, bob):
    staff = make_user("ops@example.test", is_staff=True, is_superuser=True)
    client.force_login(staff, backend="twig_auth.passwords.backends.EmailBackend")
    stepped_up()
    changelist = "/admin/twig_auth/membership/"
    client.post(changelist, {"action": "deactivate_members", "_selected_action": [bob.pk, owner.pk]})
    assert Membership.objects.get(pk=bob.pk).is_deactivated
    assert not Membership.objects.get(pk=owner.pk).is_deactivated  # the last super admin: refused with a message
    assert AuditEvent.objects.get(event="MEMBER_DEACTIVATED").email == "ops@example.test"
    page = client.get(f"/admin/twig_auth/membership/{bob.pk}/change/")
    assert page.status_code == 200 and 'name="deactivated_at"' not in page.content.decode()  # read-only
    client.post(changelist, {"action": "reactivate_members", "_selected_action": [bob.pk]})
    assert not Membership.objects.get(pk=bob.pk).is_deactivated
