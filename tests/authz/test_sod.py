"""Static separation of duties: what a member holds, and the grants, group joins and role changes refused
because they would make one member hold both permissions of a rule."""

from __future__ import annotations

import datetime as dt

import pytest

from twig_auth.audit.models import AuditEvent
from twig_auth.authz import services, sod
from twig_auth.authz.models import Grant, SodRule
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import GroupMembership, Membership
from twig_project.workspace.models import Agent

SYSTEM = RequestContext.system()
AGENT_ALL = {"agent:view", "agent:use", "agent:edit", "agent:manage"}
DS_ALL = {"data_source:view", "data_source:connect", "data_source:edit", "data_source:process"}


@pytest.fixture
def alice(org, owner, make_member):
    return make_member(org, "user", email="alice@acme.test")


@pytest.fixture
def agent(org, owner):
    return Agent.objects.create(org=org, name="Bot", created_by=owner.user)


@pytest.fixture
def four_eyes(org):
    return services.add_sod_rule(org=org, first="agent:edit", second="agent:deploy", description="Four eyes",
                                 context=SYSTEM)


def give(org, action, resource_id="*", rtype="agent", **grantee):
    return services.grant_permission(org=org, resource_type=rtype, resource_id=resource_id, action=action,
                                     context=SYSTEM, **grantee)


# --- what a member holds --------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "expected"), [
    ("user", set()),
    ("manager", {"agent:view", "agent:use", "agent:edit"} | DS_ALL),
    ("admin", AGENT_ALL | DS_ALL | {"group:member", "group:manager", "group:admin"}),
    ("super_admin", AGENT_ALL | DS_ALL | {"group:member", "group:manager", "group:admin"}),
])
def test_roles_hold_their_matrix_actions_closed_and_never_deploy(org, make_member, role, expected):
    assert sod.held_permissions(make_member(org, role)) == expected


def test_direct_group_wildcard_and_specific_grants_count_expired_ones_do_not(org, alice, agent):
    group = org_services.create_group(org=org, name="Support")
    org_services.add_to_group(group=group, membership=alice)
    give(org, "use", agent.pk, user=alice.user)  # specific: still "agent:use"
    give(org, "connect", rtype="data_source", group=group)  # through a group, wildcard
    Grant.objects.create(org=org, resource_type="agent", resource_id="*", action="deploy", user=alice.user,
                         expires_at=clock.now() - dt.timedelta(seconds=1), created_at=clock.now())
    assert sod.held_permissions(alice) == {"agent:use", "agent:view", "data_source:connect", "data_source:view"}


def test_held_permissions_answers_what_if(org, alice):
    assert sod.held_permissions(alice, role="manager", extra=["agent:deploy"]) == (
        {"agent:view", "agent:use", "agent:edit", "agent:deploy"} | DS_ALL)
    assert sod.held_permissions(alice, extra=["agent:manage"]) == AGENT_ALL


def test_grants_of_another_org_do_not_count(org, alice, make_org):
    other = make_org("globex")
    mine_there = org_services.add_member(org=other, user=alice.user)
    give(other, "deploy", user=alice.user)
    assert sod.held_permissions(alice) == set()
    assert sod.held_permissions(mine_there) == {"agent:deploy"}


def test_conflicts_lists_the_broken_rules(org, four_eyes):
    assert sod.conflicts(org, {"agent:edit", "agent:use"}) == []
    assert sod.conflicts(org, {"agent:edit", "agent:deploy"}) == [four_eyes]


# --- refusals -------------------------------------------------------------------------------------------


def test_a_grant_that_breaks_a_rule_is_refused_naming_it(org, alice, four_eyes):
    give(org, "deploy", user=alice.user)
    events = AuditEvent.objects.count()
    with pytest.raises(Conflict) as info:
        give(org, "manage", user=alice.user)  # manage includes edit
    assert info.value.detail == ('Separation of duties: alice@acme.test would hold both "agent:edit" and '
                                 '"agent:deploy" with this grant, which the rule "agent:edit ✕ agent:deploy" '
                                 "(Four eyes) forbids.")
    assert info.value.extra == {"rule": four_eyes.pk, "permissions": ["agent:edit", "agent:deploy"],
                                "members": ["alice@acme.test"]}
    assert Grant.objects.filter(action="manage").count() == 0 and AuditEvent.objects.count() == events


def test_the_role_alone_can_be_one_side(org, make_member, four_eyes, agent):
    manager = make_member(org, "manager", email="mia@acme.test")  # holds agent:edit by role
    with pytest.raises(Conflict, match='mia@acme.test would hold both "agent:edit" and "agent:deploy"'):
        give(org, "deploy", agent.pk, user=manager.user)  # a grant on one agent counts as well
    assert not Grant.objects.exists()


def test_a_group_grant_is_refused_when_any_member_would_break_a_rule(org, alice, make_member, four_eyes):
    group = org_services.create_group(org=org, name="Release")
    bob = make_member(org, "user", email="bob@acme.test")
    for m in (alice, bob):
        org_services.add_to_group(group=group, membership=m)
    give(org, "edit", user=bob.user)
    with pytest.raises(Conflict) as info:
        give(org, "deploy", group=group)
    assert 'bob@acme.test would hold both "agent:edit" and "agent:deploy" through group "Release"' in info.value.detail
    assert info.value.extra["members"] == ["bob@acme.test"]
    assert not Grant.objects.filter(group=group).exists()


def test_joining_a_group_whose_grants_break_a_rule_is_refused(org, alice, four_eyes):
    group = org_services.create_group(org=org, name="Approvers")
    give(org, "deploy", group=group)
    give(org, "edit", user=alice.user)
    with pytest.raises(Conflict, match='alice@acme.test would hold both .* by joining group "Approvers"'):
        org_services.add_to_group(group=group, membership=alice, context=SYSTEM)
    assert not GroupMembership.objects.filter(group=group).exists()
    assert not AuditEvent.objects.filter(event="GROUP_MEMBER_ADDED").exists()


def test_a_role_change_that_breaks_a_rule_is_refused(org, owner, alice, four_eyes):
    give(org, "deploy", user=alice.user)
    with pytest.raises(Conflict) as info:
        org_services.change_role(membership=alice, role="manager", context=RequestContext(actor=owner.user))
    assert info.value.detail == ('Separation of duties: alice@acme.test would hold both "agent:edit" and '
                                 '"agent:deploy" as manager, which the rule "agent:edit ✕ agent:deploy" '
                                 "(Four eyes) forbids.")
    assert Membership.objects.get(pk=alice.pk).role == "user"
    assert not AuditEvent.objects.filter(event="ROLE_CHANGED").exists()


def test_adding_a_member_whose_role_alone_breaks_a_rule_is_refused(org, make_user):
    services.add_sod_rule(org=org, first="agent:manage", second="data_source:process", context=SYSTEM)
    with pytest.raises(Conflict, match='an admin holds both "agent:manage" and "data_source:process"'):
        org_services.add_member(org=org, user=make_user("new@acme.test"), role="admin")
    assert not Membership.objects.filter(user__email="new@acme.test").exists()
    org_services.add_member(org=org, user=make_user("ok@acme.test"), role="manager")


def test_a_member_who_already_breaks_a_rule_can_still_get_unrelated_grants(org, alice):
    give(org, "edit", user=alice.user)
    give(org, "deploy", user=alice.user)
    rule = services.add_sod_rule(org=org, first="agent:edit", second="agent:deploy", context=SYSTEM)
    assert rule.violators == ["alice@acme.test"]
    assert [(r, [m.pk for m in ms]) for r, ms in sod.violations(org)] == [(rule, [alice.pk])]
    give(org, "connect", rtype="data_source", user=alice.user)
    assert Grant.objects.filter(user=alice.user).count() == 3


def test_without_rules_nothing_is_checked_or_refused(org, alice, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        sod.check_grant(org=org, resource_type="agent", action="deploy", user=alice.user)
    assert SodRule.objects.count() == 0
