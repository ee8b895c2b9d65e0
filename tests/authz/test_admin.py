"""Admin screens for grants, policies, SoD rules and time windows: every write goes through the services (so it
is validated and audited), and their errors show on the form fields."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.utils import quote

from twig_auth.audit.models import AuditEvent
from twig_auth.authz import services
from twig_auth.authz.models import Grant, Policy, SodRule
from twig_auth.core.context import RequestContext
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Group, Membership
from twig_project.workspace.models import Agent

SYSTEM = RequestContext.system()
DENY = {"policy": {"resource": "agent:*", "action": "use", "effect": "deny", "conditions": [{"user.role": "user"}]}}
WINDOW = {"accessControl": {"allowedHours": {"start": 9, "end": 17, "timezone": "Europe/Berlin"},
                            "allowedDays": [5, 1]}}


@pytest.fixture
def admin_client(client, make_user):
    staff = make_user("ops@example.test", is_staff=True, is_superuser=True)
    client.force_login(staff, backend="twig_auth.passwords.backends.EmailBackend")
    return client


@pytest.fixture
def alice(org, owner, make_member):
    return make_member(org, "user", email="alice@acme.test")


@pytest.fixture
def agent(org, owner):
    return Agent.objects.create(org=org, name="Bot", created_by=owner.user)


def page_text(response) -> str:
    return response.content.decode()


# --- grants ---------------------------------------------------------------------------------------------


def grant_form(org, **kw):
    data = {"org": org.pk, "resource_type": "agent", "resource_id": "*", "action": "use", "user": "", "group": "",
            "expires_at_0": "", "expires_at_1": "", "access_control": "null"}
    return data | kw


def test_adding_a_grant_in_the_admin_calls_the_service(admin_client, org, alice, agent):
    assert admin_client.get("/admin/twig_auth/grant/add/").status_code == 200
    response = admin_client.post("/admin/twig_auth/grant/add/", grant_form(
        org, resource_id=agent.pk, user=alice.user_id, access_control=json.dumps(WINDOW)))
    assert response.status_code == 302, page_text(response)[:2000]
    row = Grant.objects.get()
    assert (row.resource, row.action, row.user_id) == (f"agent:{agent.pk}", "use", alice.user_id)
    assert row.access_control["accessControl"]["allowedDays"] == [1, 5]
    event = AuditEvent.objects.get(event="PERMISSION_GRANTED")
    assert event.email == "ops@example.test" and event.details["grant"] == row.pk
    listing = page_text(admin_client.get("/admin/twig_auth/grant/"))
    assert f"agent:{agent.pk}" in listing and "09:00–17:00 Europe/Berlin · Mon, Fri" in listing
    assert "alice@acme.test" in listing


def test_grant_errors_show_on_their_fields_and_nothing_is_written(admin_client, org, alice):
    response = admin_client.post("/admin/twig_auth/grant/add/", grant_form(
        org, action="fly", resource_id="agt_missing", user=alice.user_id,
        access_control=json.dumps({"accessControl": {"allowedDays": [9]}})))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["action"] == ['agents have no action "fly"; choose view, use, edit, manage or deploy']
    assert form.errors["resource_id"] == ['There is no agent "agt_missing" in this organization.']
    assert form.errors["access_control"] == [
        "allowedDays: Days are ISO weekdays: whole numbers from 1 (Monday) to 7 (Sunday)."]
    assert Grant.objects.count() == 0 and not AuditEvent.objects.filter(event="PERMISSION_GRANTED").exists()


def test_an_sod_conflict_shows_on_the_grant_form(admin_client, org, alice):
    services.add_sod_rule(org=org, first="agent:edit", second="agent:deploy", context=SYSTEM)
    services.grant_permission(org=org, resource_type="agent", resource_id="*", action="edit", user=alice.user,
                              context=SYSTEM)
    response = admin_client.post("/admin/twig_auth/grant/add/", grant_form(org, action="deploy", user=alice.user_id))
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        'Separation of duties: alice@acme.test would hold both "agent:edit" and "agent:deploy" with this grant, '
        'which the rule "agent:edit ✕ agent:deploy" forbids.']
    assert Grant.objects.count() == 1


def test_deleting_a_grant_revokes_it(admin_client, org, alice):
    grant = services.grant_permission(org=org, resource_type="agent", resource_id="*", action="view",
                                      user=alice.user, context=SYSTEM)
    assert admin_client.get(f"/admin/twig_auth/grant/{quote(grant.pk)}/change/").status_code == 200  # read-only view
    response = admin_client.post(f"/admin/twig_auth/grant/{quote(grant.pk)}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Grant.objects.exists()
    assert AuditEvent.objects.get(event="PERMISSION_REVOKED").details["grant"] == grant.pk


def test_grants_cannot_be_edited_in_place(admin_client, org, alice):
    grant = services.grant_permission(org=org, resource_type="agent", resource_id="*", action="view",
                                      user=alice.user, context=SYSTEM)
    admin_client.post(f"/admin/twig_auth/grant/{quote(grant.pk)}/change/", grant_form(org, action="manage",
                                                                                user=alice.user_id))
    assert Grant.objects.get().action == "view"


# --- policies -------------------------------------------------------------------------------------------


def policy_form(org, **kw):
    return {"org": org.pk, "name": "No users", "description": "", "document": json.dumps(DENY), "enabled": "on"} | kw


def test_policy_add_validates_the_document_with_errors_at_their_paths(admin_client, org):
    bad = {"policy": {"resource": "agent:*", "action": "use", "effect": "maybe", "conditions": [{"user.role": []}]}}
    response = admin_client.post("/admin/twig_auth/policy/add/", policy_form(org, document=json.dumps(bad)))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["document"]
    assert len(errors) == 2
    assert errors[0].startswith("policy.effect: ") and errors[1].startswith("policy.conditions.0")
    assert Policy.objects.count() == 0


def test_policy_add_change_enable_disable_and_delete_are_audited(admin_client, org):
    response = admin_client.post("/admin/twig_auth/policy/add/", policy_form(org))
    assert response.status_code == 302, page_text(response)[:2000]
    policy = Policy.objects.get()
    assert policy.enabled and policy.document["policy"]["effect"] == "deny"
    url = f"/admin/twig_auth/policy/{quote(policy.pk)}/change/"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, policy_form(org, name="Users may not use agents", description="why"))
    assert response.status_code == 302, page_text(response)[:2000]
    assert Policy.objects.get().name == "Users may not use agents"
    assert AuditEvent.objects.get(event="POLICY_UPDATED").details["changed"] == ["description", "name"]
    admin_client.post("/admin/twig_auth/policy/", {"action": "disable", "_selected_action": [policy.pk]})
    assert Policy.objects.get().enabled is False
    admin_client.post("/admin/twig_auth/policy/", {"action": "enable", "_selected_action": [policy.pk]})
    assert Policy.objects.get().enabled is True
    assert AuditEvent.objects.filter(event="POLICY_UPDATED").count() == 3
    admin_client.post(f"/admin/twig_auth/policy/{quote(policy.pk)}/delete/", {"post": "yes"})
    assert not Policy.objects.exists() and AuditEvent.objects.filter(event="POLICY_DELETED").count() == 1


def test_a_duplicate_policy_name_and_a_non_enterprise_org_are_refused_on_the_form(admin_client, org, make_org):
    services.create_policy(org=org, name="No users", document=DENY, context=SYSTEM)
    response = admin_client.post("/admin/twig_auth/policy/add/", policy_form(org, name="NO USERS"))
    assert response.context["adminform"].form.errors["name"] == [
        'A policy named "NO USERS" already exists in this organization.']
    team = make_org("smallco", plan="team")
    response = admin_client.post("/admin/twig_auth/policy/add/", policy_form(team))
    assert response.context["adminform"].form.non_field_errors() == ["ABAC policies require the enterprise plan."]
    assert Policy.objects.count() == 1


# --- SoD rules ------------------------------------------------------------------------------------------


def test_adding_an_sod_rule_warns_about_members_who_already_break_it(admin_client, org, alice):
    for action in ("edit", "deploy"):
        Grant.objects.create(org=org, resource_type="agent", resource_id="*", action=action, user=alice.user,
                             created_at=org.created_at)
    response = admin_client.post("/admin/twig_auth/sodrule/add/", {
        "org": org.pk, "first": "agent:edit", "second": "agent:deploy", "description": "Four eyes"}, follow=True)
    assert SodRule.objects.count() == 1
    text = page_text(response)
    assert "already hold both permissions and break the new rule: alice@acme.test" in text
    assert AuditEvent.objects.get(event="SOD_RULE_ADDED").details["violators"] == ["alice@acme.test"]
    rule = SodRule.objects.get()
    assert "alice@acme.test" in page_text(admin_client.get(f"/admin/twig_auth/sodrule/{rule.pk}/change/"))
    admin_client.post(f"/admin/twig_auth/sodrule/{rule.pk}/delete/", {"post": "yes"})
    assert not SodRule.objects.exists() and AuditEvent.objects.filter(event="SOD_RULE_REMOVED").count() == 1


def test_bad_sod_permissions_show_on_their_fields(admin_client, org):
    response = admin_client.post("/admin/twig_auth/sodrule/add/", {
        "org": org.pk, "first": "agent:fly", "second": "robot:run", "description": ""})
    errors = response.context["adminform"].form.errors
    assert errors["first"] == ['agents have no action "fly"; choose view, use, edit, manage or deploy']
    assert errors["second"] == ['there is no resource type "robot"; choose agent, data_source or group']
    assert not SodRule.objects.exists()


# --- time windows on members and groups -----------------------------------------------------------------


def test_a_members_time_window_is_edited_through_the_service(admin_client, org, alice):
    url = f"/admin/twig_auth/membership/{alice.pk}/change/"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"role": "user", "attributes": "{}", "access_control": json.dumps(WINDOW)})
    assert response.status_code == 302, page_text(response)[:2000]
    assert Membership.objects.get(pk=alice.pk).access_control["accessControl"]["allowedDays"] == [1, 5]
    event = AuditEvent.objects.get(event="ACCESS_WINDOW_CHANGED")
    assert event.details["member"] == "alice@acme.test" and event.email == "ops@example.test"
    assert "Mon, Fri" in page_text(admin_client.get("/admin/twig_auth/membership/"))


def test_a_bad_member_window_is_shown_and_not_saved(admin_client, org, alice):
    url = f"/admin/twig_auth/membership/{alice.pk}/change/"
    bad = {"accessControl": {"allowedHours": {"start": 9, "end": 17, "timezone": "Mars/Base"}}}
    response = admin_client.post(url, {"role": "user", "attributes": "{}", "access_control": json.dumps(bad)})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["access_control"]
    assert len(errors) == 1 and errors[0].startswith("allowedHours.timezone: ")
    assert Membership.objects.get(pk=alice.pk).access_control is None
    assert not AuditEvent.objects.filter(event="ACCESS_WINDOW_CHANGED").exists()


def test_a_groups_time_window_is_edited_through_the_service(admin_client, org, alice):
    group = org_services.create_group(org=org, name="Night shift")
    url = f"/admin/twig_auth/group/{group.pk}/change/"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {
        "org": org.pk, "name": "Night shift", "description": "", "access_control": json.dumps(
            {"allowedHours": {"start": 22, "end": 6}}),
        "group_memberships-TOTAL_FORMS": "0", "group_memberships-INITIAL_FORMS": "0",
        "group_memberships-MIN_NUM_FORMS": "0", "group_memberships-MAX_NUM_FORMS": "1000"})
    assert response.status_code == 302, page_text(response)[:2000]
    assert Group.objects.get().access_control == {"accessControl": {"allowedHours": {"start": 22, "end": 6}}}
    assert AuditEvent.objects.get(event="ACCESS_WINDOW_CHANGED").details["group"] == "Night shift"
