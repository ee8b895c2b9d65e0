"""Authorization services: grants, policies, SoD rules and time windows. Each write is one transaction with one
audit event; bad input is refused field by field and nothing is written."""

from __future__ import annotations

import datetime as dt

import pytest

from twig_auth.audit.models import AuditEvent
from twig_auth.authz import services
from twig_auth.authz.models import Grant, Policy, SodRule
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from twig_auth.orgs import services as org_services
from twig_project.workspace.models import Agent

WINDOW = {"accessControl": {"allowedHours": {"start": 9, "end": 17, "timezone": "America/New_York"},
                            "allowedDays": [5, 1, 2, 3, 4, 1]}}
WINDOW_CLEAN = {"accessControl": {"allowedHours": {"start": 9, "end": 17, "timezone": "America/New_York"},
                                  "allowedDays": [1, 2, 3, 4, 5]}}
DENY_NIGHTS = {"policy": {"resource": "agent:*", "action": "use", "effect": "deny",
                          "conditions": [{"time.hour": {"<": 9}}]}}


def ctx(membership=None, user=None):
    return RequestContext(actor=user if user is not None else membership.user, ip="198.51.100.7")


def events(name):
    return list(AuditEvent.objects.filter(event=name))


@pytest.fixture
def admin_m(org, owner, make_member):
    return make_member(org, "admin", email="ada@acme.test")


@pytest.fixture
def alice(org, make_member):
    return make_member(org, "user", email="alice@acme.test")


@pytest.fixture
def agent(org, owner):
    return Agent.objects.create(org=org, name="Support bot", created_by=owner.user)


def grant(org, actor, **kw):
    args = {"resource_type": "agent", "resource_id": "*", "action": "use"} | kw
    return services.grant_permission(org=org, context=ctx(actor), **args)


# --- grants ---------------------------------------------------------------------------------------------


def test_grant_to_a_member_is_stored_and_audited(org, admin_m, alice, agent):
    before = AuditEvent.objects.count()
    g = grant(org, admin_m, resource_id=agent.pk, user=alice.user)
    row = Grant.objects.get()
    assert (row.pk, row.resource_type, row.resource_id, row.action, row.user_id, row.group_id) == (
        g.pk, "agent", agent.pk, "use", alice.user_id, None)
    assert row.pk.startswith("grt_") and row.created_by_id == admin_m.user_id and row.access_control is None
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.get(event="PERMISSION_GRANTED")
    assert event.details == {"grant": g.pk, "resource": f"agent:{agent.pk}", "action": "use",
                             "member": "alice@acme.test", "expires_at": None, "access_control": None}
    assert (event.user_id, event.org_id, event.target_id, event.ip_address) == (
        admin_m.user_id, org.pk, g.pk, "198.51.100.7")


def test_wildcard_group_grant_with_expiry_and_window_is_normalized(org, admin_m):
    group = org_services.create_group(org=org, name="Support")
    until = clock.now() + dt.timedelta(days=30)
    g = grant(org, admin_m, group=group, action="view", expires_at=until, access_control=WINDOW)
    row = Grant.objects.get(pk=g.pk)
    assert row.resource_id == "*" and row.group_id == group.pk and row.user_id is None
    assert row.expires_at == until and row.access_control == WINDOW_CLEAN
    details = AuditEvent.objects.get(event="PERMISSION_GRANTED").details
    assert details["group"] == "Support" and details["access_control"] == WINDOW_CLEAN
    assert details["expires_at"] == until.isoformat()


def test_a_bare_window_body_and_an_iso_expiry_string_are_accepted(org, admin_m, alice):
    g = grant(org, admin_m, user=alice.user, expires_at="2999-01-31T17:00:00Z",
              access_control={"allowedDays": [6, 7]})
    assert g.access_control == {"accessControl": {"allowedDays": [6, 7]}}
    assert g.expires_at == dt.datetime(2999, 1, 31, 17, tzinfo=dt.UTC)


def test_every_bad_field_is_named_and_nothing_is_written(org, admin_m, alice):
    before = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as info:
        grant(org, admin_m, action="fly", resource_id="agt_nope", user=alice.user,
              expires_at=clock.now() - dt.timedelta(minutes=1),
              access_control={"accessControl": {"allowedHours": {"start": 9, "end": 30}}})
    assert info.value.errors == {
        "action": ['agents have no action "fly"; choose view, use, edit, manage or deploy'],
        "resource_id": ['There is no agent "agt_nope" in this organization.'],
        "expires_at": ["Must be in the future."],
        "access_control.allowedHours.end": ["Must be a whole hour from 0 to 24."],
    }
    assert info.value.code == "invalid"
    assert Grant.objects.count() == 0 and AuditEvent.objects.count() == before


def test_unknown_type_missing_grantee_and_naive_expiry(org, admin_m):
    with pytest.raises(InvalidInput) as info:
        grant(org, admin_m, resource_type="robot", expires_at=dt.datetime(2999, 1, 1))
    assert info.value.errors == {
        "resource_type": ['there is no resource type "robot"; choose agent, data_source or group'],
        "grantee": ["Grant to one member or to one group."],
        "expires_at": ["Include a time zone, such as 2030-01-31T17:00:00Z."],
    }


def test_grantees_must_belong_to_the_org(org, admin_m, alice, make_org, make_user):
    other = make_org("globex")
    foreign_group = org_services.create_group(org=other, name="Elsewhere")
    with pytest.raises(InvalidInput) as info:
        grant(org, admin_m, user=make_user("stranger@example.test"))
    assert info.value.errors == {"user": ["stranger@example.test is not a member of this organization."]}
    with pytest.raises(InvalidInput) as info:
        grant(org, admin_m, group=foreign_group)
    assert info.value.errors == {"group": ['The group "Elsewhere" belongs to another organization.']}
    with pytest.raises(InvalidInput) as info:
        grant(org, admin_m, user=alice.user, group=foreign_group)
    assert info.value.errors == {"grantee": ["Grant to a member or to a group, not both."]}
    assert Grant.objects.count() == 0


def test_a_resource_of_another_org_is_not_found(org, admin_m, alice, make_org):
    theirs = Agent.objects.create(org=make_org("globex"), name="Theirs")
    with pytest.raises(InvalidInput) as info:
        grant(org, admin_m, resource_id=theirs.pk, user=alice.user)
    assert info.value.errors == {"resource_id": [f'There is no agent "{theirs.pk}" in this organization.']}


def test_groups_are_resources_too(org, admin_m, alice):
    group = org_services.create_group(org=org, name="Support")
    g = grant(org, admin_m, resource_type="group", resource_id=group.pk, action="manager", user=alice.user)
    assert g.resource == f"group:{group.pk}"
    with pytest.raises(InvalidInput) as info:
        grant(org, admin_m, resource_type="group", resource_id="not-a-number", action="member", user=alice.user)
    assert info.value.errors == {"resource_id": ['There is no group "not-a-number" in this organization.']}


@pytest.mark.parametrize("role", ["user", "manager"])
def test_members_below_admin_may_not_grant(org, alice, make_member, role):
    actor = make_member(org, role)
    with pytest.raises(PermissionDenied) as info:
        grant(org, actor, user=alice.user)
    assert info.value.detail == "Only admins, or a member who manages this resource, can grant permissions on it."
    assert Grant.objects.count() == 0 and not events("PERMISSION_GRANTED")


def test_outsiders_may_not_grant_but_operators_may(org, alice, make_user, make_org, make_member):
    outsider = make_member(make_org("globex"), "super_admin")
    with pytest.raises(PermissionDenied, match="not a member"):
        grant(org, outsider, user=alice.user)
    root = make_user("root@example.test", is_superuser=True, is_staff=True)
    services.grant_permission(org=org, resource_type="agent", resource_id="*", action="view", user=alice.user,
                              context=ctx(user=root))
    services.grant_permission(org=org, resource_type="agent", resource_id="*", action="edit", user=alice.user,
                              context=RequestContext.system())
    assert Grant.objects.filter(user=alice.user).count() == 2


def test_a_duplicate_live_grant_is_refused_but_an_expired_one_does_not_count(org, admin_m, alice, agent):
    Grant.objects.create(org=org, resource_type="agent", resource_id=agent.pk, action="use", user=alice.user,
                         expires_at=clock.now() - dt.timedelta(hours=1), created_at=clock.now())
    first = grant(org, admin_m, resource_id=agent.pk, user=alice.user)
    with pytest.raises(Conflict) as info:
        grant(org, admin_m, resource_id=agent.pk, user=alice.user, expires_at=clock.now() + dt.timedelta(days=1))
    assert info.value.detail == (f'alice@acme.test already holds "use" on agent:{agent.pk} (grant {first.pk}); '
                                 "revoke it first to change its expiry or time window.")
    assert info.value.extra == {"grant": first.pk}
    assert Grant.objects.count() == 2 and len(events("PERMISSION_GRANTED")) == 1
    grant(org, admin_m, resource_id=agent.pk, user=alice.user, action="view")  # another action is another grant


def test_revoke_deletes_and_audits(org, admin_m, alice, agent):
    g = grant(org, admin_m, resource_id=agent.pk, user=alice.user, action="edit")
    services.revoke_permission(grant=g, context=ctx(admin_m))
    assert not Grant.objects.filter(pk=g.pk).exists()
    event = AuditEvent.objects.get(event="PERMISSION_REVOKED")
    assert event.target_id == g.pk and event.user_id == admin_m.user_id
    assert event.details["resource"] == f"agent:{agent.pk}" and event.details["action"] == "edit"
    assert event.details["member"] == "alice@acme.test"
    with pytest.raises(NotFound):
        services.revoke_permission(grant=g, context=ctx(admin_m))
    assert len(events("PERMISSION_REVOKED")) == 1


def test_a_user_may_not_revoke(org, admin_m, alice, agent):
    g = grant(org, admin_m, resource_id=agent.pk, user=alice.user)
    with pytest.raises(PermissionDenied):
        services.revoke_permission(grant=g, context=ctx(alice))
    assert Grant.objects.filter(pk=g.pk).exists() and not events("PERMISSION_REVOKED")


def test_the_manager_of_one_resource_may_grant_what_manage_includes_on_it(org, admin_m, alice, make_member):
    pytest.importorskip("twig_auth.authz.decisions")
    bob = make_member(org, "user", email="bob@acme.test")
    own = Agent.objects.create(org=org, name="Bob's bot", created_by=bob.user)  # the owner holds manage
    other = Agent.objects.create(org=org, name="Other", created_by=admin_m.user)
    g = grant(org, bob, resource_id=own.pk, user=alice.user, action="edit")
    assert g.created_by_id == bob.user_id
    for kw in ({"resource_id": own.pk, "action": "deploy"}, {"resource_id": "*", "action": "use"},
               {"resource_id": other.pk, "action": "use"}, {"resource_id": "agt_missing", "action": "use"}):
        with pytest.raises(PermissionDenied):
            grant(org, bob, user=alice.user, **kw)
    services.revoke_permission(grant=g, context=ctx(bob))
    assert Grant.objects.count() == 0


# --- policies -------------------------------------------------------------------------------------------


def test_create_policy_stores_the_normalized_document_audits_and_bumps_the_store(
        org, admin_m, monkeypatch, django_capture_on_commit_callbacks):
    from twig_auth.authz import store

    bumped = []
    monkeypatch.setattr(store, "policies_changed", bumped.append)
    document = {"policy": {"resource": "agent:*", "action": "use", "effect": "deny",
                           "conditions": [{"time.hour": {"==": 3}}]}}
    with django_capture_on_commit_callbacks(execute=True):
        policy = services.create_policy(org=org, name=" Night freeze ", document=document,
                                        description="No use at 3am", context=ctx(admin_m))
        assert bumped == []  # only once the transaction commits
    assert bumped == [org.pk]
    row = Policy.objects.get()
    assert (row.pk, row.name, row.description, row.enabled, row.updated_by_id) == (
        policy.pk, "Night freeze", "No use at 3am", True, admin_m.user_id)
    assert row.document["policy"]["conditions"] == [{"time.hour": 3}]
    event = AuditEvent.objects.get(event="POLICY_CREATED")
    assert event.details == {"policy": policy.pk, "name": "Night freeze", "effect": "deny", "resource": "agent:*",
                             "action": "use", "enabled": True}


def test_policy_errors_are_field_level_and_nothing_is_written(org, admin_m):
    services.create_policy(org=org, name="Taken", document=DENY_NIGHTS, context=ctx(admin_m))
    bad = {"policy": {"resource": "agent:*", "action": "fly", "effect": "maybe",
                      "conditions": [{"time.hour": {">=": "nine"}}]}}
    with pytest.raises(InvalidInput) as info:
        services.create_policy(org=org, name="taken", document=bad, enabled="yes", context=ctx(admin_m))
    errors = info.value.errors
    assert set(errors) == {"name", "enabled", "policy.action", "policy.effect", "policy.conditions.0.time.hour"}
    assert errors["name"] == ['A policy named "taken" already exists in this organization.']
    assert errors["enabled"] == ["Must be true or false."]
    assert Policy.objects.count() == 1 and len(events("POLICY_CREATED")) == 1


def test_a_document_that_is_not_an_object_is_a_document_error(org, admin_m):
    with pytest.raises(InvalidInput) as info:
        services.create_policy(org=org, name="x", document=[1], context=ctx(admin_m))
    assert list(info.value.errors) == ["document"]


def test_policies_are_enterprise_only_and_admin_only(make_org, make_member, org, alice):
    team = make_org("smallco", plan="team")
    boss = make_member(team, "super_admin")
    with pytest.raises(PermissionDenied) as info:
        services.create_policy(org=team, name="x", document=DENY_NIGHTS, context=ctx(boss))
    assert info.value.detail == "ABAC policies require the enterprise plan."
    with pytest.raises(PermissionDenied, match="Only admins can manage policies"):
        services.create_policy(org=org, name="x", document=DENY_NIGHTS, context=ctx(alice))
    assert Policy.objects.count() == 0


def test_update_policy_writes_only_what_changed(org, admin_m, monkeypatch, django_capture_on_commit_callbacks):
    from twig_auth.authz import store

    bumped = []
    monkeypatch.setattr(store, "policies_changed", bumped.append)
    policy = services.create_policy(org=org, name="Freeze", document=DENY_NIGHTS, context=ctx(admin_m))
    with django_capture_on_commit_callbacks(execute=True):
        services.update_policy(policy=policy, name="Freeze", enabled=False, context=ctx(admin_m))
    assert Policy.objects.get().enabled is False
    event = AuditEvent.objects.get(event="POLICY_UPDATED")
    assert event.details["changed"] == ["enabled"] and event.details["enabled"] is False
    assert bumped == [org.pk]
    services.update_policy(policy=policy, enabled=False, context=ctx(admin_m))  # nothing changes: no event
    assert len(events("POLICY_UPDATED")) == 1
    with pytest.raises(InvalidInput) as info:
        services.update_policy(policy=policy, colour="red", document={"policy": {}}, context=ctx(admin_m))
    assert set(info.value.errors) == {"colour", "policy.resource", "policy.action", "policy.effect"}
    assert Policy.objects.get().document == policy.document


def test_delete_policy_audits_and_works_after_a_downgrade(org, admin_m, django_capture_on_commit_callbacks):
    policy = services.create_policy(org=org, name="Freeze", document=DENY_NIGHTS, context=ctx(admin_m))
    org.plan = "team"
    org.save()
    with pytest.raises(PermissionDenied):
        services.update_policy(policy=policy, enabled=False, context=ctx(admin_m))
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_policy(policy=policy, context=ctx(admin_m))
    assert Policy.objects.count() == 0
    assert AuditEvent.objects.get(event="POLICY_DELETED").details["name"] == "Freeze"


# --- SoD rules ------------------------------------------------------------------------------------------


def test_add_sod_rule_validates_permissions_against_the_registry(org, admin_m):
    with pytest.raises(InvalidInput) as info:
        services.add_sod_rule(org=org, first="agent:fly", second="deploy", context=ctx(admin_m))
    assert info.value.errors == {
        "first": ['agents have no action "fly"; choose view, use, edit, manage or deploy'],
        "second": ['write a permission as "type:action", such as "agent:edit"'],
    }
    with pytest.raises(InvalidInput) as info:
        services.add_sod_rule(org=org, first="agent:edit", second="agent:edit", context=ctx(admin_m))
    assert info.value.errors == {"second": ["Must differ from the first permission."]}
    with pytest.raises(InvalidInput) as info:
        services.add_sod_rule(org=org, first="agent:view", second="agent:manage", context=ctx(admin_m))
    assert info.value.errors["second"][0].startswith('"agent:manage" includes "agent:view"')
    assert SodRule.objects.count() == 0 and not events("SOD_RULE_ADDED")


def test_add_and_remove_sod_rule(org, admin_m, alice):
    rule = services.add_sod_rule(org=org, first="agent:edit", second="agent:deploy", description="Four eyes",
                                 context=ctx(admin_m))
    assert rule.violators == []
    assert AuditEvent.objects.get(event="SOD_RULE_ADDED").details == {
        "first": "agent:edit", "second": "agent:deploy", "description": "Four eyes", "violators": []}
    with pytest.raises(Conflict, match='"agent:edit ✕ agent:deploy" already exists'):
        services.add_sod_rule(org=org, first="agent:deploy", second="agent:edit", context=ctx(admin_m))
    with pytest.raises(PermissionDenied):
        services.remove_sod_rule(rule=rule, context=ctx(alice))
    services.remove_sod_rule(rule=rule, context=ctx(admin_m))
    assert SodRule.objects.count() == 0
    assert AuditEvent.objects.get(event="SOD_RULE_REMOVED").details["first"] == "agent:edit"


def test_a_rule_current_members_break_is_added_and_names_them(org, owner, admin_m, alice):
    grant(org, admin_m, user=alice.user, action="deploy")
    Grant.objects.create(org=org, resource_type="agent", resource_id="*", action="edit", user=alice.user,
                         created_at=clock.now())  # written around the services, before the rule existed
    rule = services.add_sod_rule(org=org, first="agent:edit", second="agent:deploy", context=ctx(admin_m))
    assert rule.violators == ["alice@acme.test"]
    assert AuditEvent.objects.get(event="SOD_RULE_ADDED").details["violators"] == ["alice@acme.test"]


# --- time windows ---------------------------------------------------------------------------------------


def test_set_access_control_on_a_member_and_a_group(org, admin_m, alice):
    services.set_access_control(target=alice, document=WINDOW, context=ctx(admin_m))
    alice.refresh_from_db()
    assert alice.access_control == WINDOW_CLEAN
    event = AuditEvent.objects.get(event="ACCESS_WINDOW_CHANGED")
    assert event.details == {"member": "alice@acme.test", "from": None, "to": WINDOW_CLEAN}
    services.set_access_control(target=alice, document=WINDOW_CLEAN, context=ctx(admin_m))  # no change, no event
    services.set_access_control(target=alice, document={}, context=ctx(admin_m))
    alice.refresh_from_db()
    assert alice.access_control is None and len(events("ACCESS_WINDOW_CHANGED")) == 2
    group = org_services.create_group(org=org, name="Night shift")
    services.set_access_control(target=group, document={"allowedHours": {"start": 22, "end": 6}},
                                context=ctx(admin_m))
    group.refresh_from_db()
    assert group.access_control == {"accessControl": {"allowedHours": {"start": 22, "end": 6}}}
    assert AuditEvent.objects.filter(event="ACCESS_WINDOW_CHANGED").latest("id").details["group"] == "Night shift"


def test_bad_windows_are_refused_by_path(org, admin_m, alice):
    with pytest.raises(InvalidInput) as info:
        services.set_access_control(target=alice, document={"accessControl": {
            "allowedHours": {"start": 9, "end": 17, "timezone": "Mars/Olympus"}, "allowedDays": [0]}},
            context=ctx(admin_m))
    assert set(info.value.errors) == {"access_control.allowedHours.timezone", "access_control.allowedDays"}
    with pytest.raises(InvalidInput) as info:
        services.set_access_control(target=alice, document="9-5", context=ctx(admin_m))
    assert list(info.value.errors) == ["access_control"]
    alice.refresh_from_db()
    assert alice.access_control is None and not events("ACCESS_WINDOW_CHANGED")


def test_only_admins_set_windows_and_never_above_their_rank(org, owner, admin_m, alice):
    with pytest.raises(PermissionDenied):
        services.set_access_control(target=admin_m, document=WINDOW, context=ctx(alice))
    with pytest.raises(PermissionDenied, match="above your own"):
        services.set_access_control(target=owner, document=WINDOW, context=ctx(admin_m))
    services.set_access_control(target=admin_m, document=WINDOW, context=ctx(owner))
    assert len(events("ACCESS_WINDOW_CHANGED")) == 1
