"""The decision API: order of the steps, deny wins, wildcards, grant-only deploy and dynamic SoD, ABAC on
enterprise orgs only, explanations, require() and its audit event, resource keys, and query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.core.signals import request_started
from django.db import close_old_connections

from tests.authz import helpers_decisions as h
from twig_auth.audit.models import AuditEvent
from twig_auth.authz import store
from twig_auth.authz.decisions import (
    AuthzDecision,
    Step,
    authorize,
    authorized,
    explain,
    has_permission,
    require,
    resolve_resource,
    resource_key,
)
from twig_auth.authz.matrix import Permission
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, NotFound, PermissionDenied
from twig_auth.orgs.models import Membership
from twig_auth.orgs.principal import PrincipalMembership
from twig_project.workspace.models import Agent


def fresh(m: Membership) -> Membership:
    """The member as a new request loads it (nothing cached)."""
    return Membership.objects.select_related("org", "user").get(pk=m.pk)


def allowed(actor, action, obj, **kw) -> bool:
    return authorize(actor, action, obj, **kw).allowed


@pytest.fixture
def member(org, owner, make_member):
    return make_member(org, "user", email="ann@acme.test")


# --- the steps, in order ------------------------------------------------------------------------------------

def test_member_of_another_org_is_denied_first(org, owner, make_org, make_member):
    other = make_org("globex")
    outsider = make_member(other, "super_admin")
    a = h.agent(org)
    h.grant(other, "agent:*", "use", to=outsider)  # a grant in their own org does not reach across
    d = authorize(outsider, "view", a)
    assert not d.allowed and d.decided_by == "membership"
    assert d.steps == (Step("membership", "deny", f"the actor is not a member of the organization that owns "
                                                  f"{resource_key(a)}"),)
    assert not allowed(None, "view", a)


def test_role_matrix_then_owner_then_grant_then_default(org, owner, member, make_member):
    manager = make_member(org, "manager")
    mine, theirs, granted = h.agent(org, created_by=member), h.agent(org, created_by=owner), h.agent(org)
    h.grant(org, granted, "use", to=member)

    d = authorize(manager, "edit", theirs)
    assert d.allowed and d.decided_by == "role"
    assert d.reason == 'Role "manager" holds "edit" on every agent of the organization.'
    assert authorize(manager, "view", theirs).reason.endswith(', which allows "view".')
    assert not allowed(manager, "manage", theirs)  # manager tops out at edit

    assert authorize(member, "manage", mine).decided_by == "owner"
    assert not allowed(member, "view", theirs)

    d = authorize(member, "view", granted)
    assert d.allowed and d.decided_by == "grant" and "The member holds \"use\"" in d.reason
    assert not allowed(member, "edit", granted)
    d = authorize(member, "edit", granted)
    assert d.decided_by == "default" and [s.kind for s in d.steps] == ["membership", "role", "owner", "grant",
                                                                        "default"]


def test_group_grants_and_wildcards(org, owner, member, make_member):
    bob = make_member(org, "user")
    support = h.group(org, "Support", member)
    a, b = h.agent(org), h.agent(org)
    h.grant(org, "agent:*", "use", to=support)
    assert allowed(member, "use", a) and allowed(member, "view", b) and not allowed(member, "edit", a)
    assert not allowed(bob, "view", a)
    d = authorize(member, "use", b)
    assert d.reason.startswith('Group "Support" holds "use" on agent:* (grant grt_')


def test_grants_on_one_type_do_not_leak_to_another(org, owner, member):
    source = h.data_source(org)
    h.grant(org, "agent:*", "manage", to=member)
    assert not allowed(member, "view", source)
    h.grant(org, source, "process", to=member)
    assert allowed(member, "view", source) and allowed(member, "process", source)
    assert not allowed(member, "connect", source) and not allowed(member, "edit", source)


def test_unknown_action_and_unregistered_model(org, owner, member):
    with pytest.raises(InvalidInput) as exc:
        authorize(member, "launch", h.agent(org))
    assert "action" in exc.value.errors
    with pytest.raises(ValueError):
        authorize(member, "view", member)


# --- deploy: grant only, dynamic SoD --------------------------------------------------------------------------

def test_deploy_never_comes_from_role_or_ownership(org, owner, make_member):
    admin = make_member(org, "admin")
    a = h.agent(org, created_by=admin)
    for actor in (owner, admin):
        d = authorize(actor, "deploy", a)
        assert not d.allowed
    assert authorize(owner, "deploy", a).decided_by == "default"
    assert authorize(admin, "deploy", a).decided_by == "sod"  # its creator, in any case


def test_deploy_needs_a_grant_and_the_creator_or_last_modifier_never_gets_it(org, owner, make_member):
    approver, author, editor = (make_member(org, r) for r in ("user", "manager", "manager"))
    a = h.agent(org, created_by=author, updated_by=editor)
    for m in (approver, author, editor):
        h.grant(org, "agent:*", "deploy", to=m)
    assert allowed(approver, "deploy", a)
    for m, did in ((author, "created"), (editor, "last changed")):
        d = authorize(m, "deploy", a)
        assert not d.allowed and d.decided_by == "sod"
        assert d.reason == f"Separation of duties: the member {did} {resource_key(a)}, so may not deploy it."
        assert allowed(m, "edit", a)  # SoD only concerns deploy
    assert set(authorized(approver, "deploy", Agent.objects.all())) == {a}
    assert not authorized(author, "deploy", Agent.objects.all()).exists()
    assert not authorized(editor, "deploy", Agent.objects.all()).exists()


def test_deploy_grant_does_not_imply_anything_and_manage_does_not_imply_deploy(org, owner, member):
    a = h.agent(org)
    h.grant(org, a, "deploy", to=member)
    assert allowed(member, "deploy", a) and not allowed(member, "view", a)
    h.grant(org, a, "manage", to=member)
    other = h.agent(org)
    h.grant(org, other, "manage", to=member)
    assert not allowed(fresh(member), "deploy", other)


# --- ABAC -------------------------------------------------------------------------------------------------------

def test_deny_policy_beats_role_owner_and_grant(org, owner, member):
    member.attributes = {"department": "contractors"}
    member.save()
    a = h.agent(org, created_by=member)
    h.grant(org, "agent:*", "manage", to=member)
    p = h.policy(org, "agent:*", "*", "deny", {"user.department": "contractors"}, name="No contractors")
    for actor, action in ((member, "view"), (member, "manage")):
        d = authorize(actor, action, a)
        assert not d.allowed and d.decided_by == "policy" and d.policy_ids == (p.id,)
        assert d.reason == (f'Policy "No contractors" ({p.id}) denies "{action}" on {resource_key(a)}: '
                            f'user.department is "contractors".')
    assert allowed(owner, "manage", a)


def test_allow_policy_comes_last_and_only_for_enterprise(org, owner, member, make_org, make_member):
    member.attributes = {"department": "support"}
    member.save()
    a = h.agent(org)
    assert not allowed(member, "use", a)
    p = h.policy(org, "agent:*", "use", "allow", {"user.department": "support"}, {"user.role": "user"})
    d = authorize(member, "use", a)
    assert d.allowed and d.decided_by == "policy" and d.policy_ids == (p.id,)
    assert not allowed(member, "edit", a)

    team = make_org("team-org", plan="team")
    m2 = make_member(team, "user")
    m2.attributes = {"department": "support"}
    m2.save()
    b = h.agent(team)
    h.policy(team, "agent:*", "use", "allow", {"user.department": "support"})
    d = explain(m2, "use", b)
    assert not d.allowed and "policy" not in [s.kind for s in d.steps]


def test_wildcard_action_policy_does_not_allow_deploy_but_a_named_one_does(org, owner, member):
    a = h.agent(org)
    h.policy(org, "*", "*", "allow", {"user.role": "user"})
    assert allowed(member, "manage", a)
    d = authorize(member, "deploy", a)
    assert not d.allowed and d.decided_by == "default"
    assert any(s.kind == "policy" and s.detail.startswith('only a policy naming "deploy"') for s in d.steps)
    h.policy(org, "agent:*", "deploy", "allow", {"user.role": "user"})
    assert allowed(member, "deploy", a)
    assert not allowed(member, "deploy", h.agent(org, updated_by=member))  # SoD still wins


def test_policy_attributes(org, owner, member, make_member):
    support = h.group(org, "Support", member)
    assert support
    mine, other = h.agent(org, created_by=owner), h.agent(org)
    h.policy(org, f"agent:{other.pk}", "view", "allow", {"user.email_domain": "acme.test"})
    h.policy(org, "agent:*", "use", "allow", {"user.groups": {"contains": "Support"}}, {"request.mfa": True},
             {"request.ip": {"cidr": "10.0.0.0/8"}})
    h.policy(org, "agent:*", "edit", "allow", {"resource.owner": str(owner.user_id)}, {"user.id": str(member.user_id)})
    ctx = RequestContext(ip="10.2.3.4", mfa_used=True)
    assert allowed(member, "view", other) and not allowed(member, "view", mine)
    assert allowed(member, "use", mine, context=ctx)
    assert not allowed(member, "use", mine, context=RequestContext(ip="192.168.0.1", mfa_used=True))
    assert not allowed(member, "use", mine, context=RequestContext(ip="10.2.3.4"))
    assert not allowed(member, "use", mine)  # no context: request.* are missing, conditions on them fail
    assert allowed(member, "edit", mine) and not allowed(member, "edit", other)
    bob = make_member(org, "user")
    assert not allowed(bob, "use", mine, context=ctx)


def test_member_attributes_cannot_spoof_role_id_email_or_groups(org, owner, member):
    member.attributes = {"role": "admin", "id": str(owner.user_id), "email": "owner@acme.test", "groups": ["Ops"]}
    member.save()
    a = h.agent(org)
    h.policy(org, "agent:*", "view", "allow", {"user.role": "admin"})
    h.policy(org, "agent:*", "use", "allow", {"user.email": "owner@acme.test"})
    h.policy(org, "agent:*", "edit", "allow", {"user.groups": {"contains": "Ops"}})
    assert not allowed(member, "view", a) and not allowed(member, "use", a) and not allowed(member, "edit", a)


def test_time_in_the_org_timezone_unless_the_policy_names_one(org, owner, member):
    org.settings = {"timezone": "America/New_York"}
    org.save()
    a = h.agent(org)
    h.policy(org, "agent:*", "view", "allow", {"time.hour": {">=": 9, "<": 17}})
    h.policy(org, "agent:*", "use", "allow", {"time.hour": {">=": 9, "<": 17}}, timezone="Asia/Kolkata")
    m = fresh(member)
    # 15:00 UTC on 2026-03-09 is 11:00 in New York (EDT) and 20:30 in Kolkata
    assert allowed(m, "view", a, at=h.MONDAY_3PM) and not allowed(m, "use", a, at=h.MONDAY_3PM)
    morning = h.MONDAY_3PM.replace(hour=5)  # 01:00 New York, 10:30 Kolkata
    assert not allowed(m, "view", a, at=morning) and allowed(m, "use", a, at=morning)


def test_disabled_policy_is_ignored(org, owner, member):
    a = h.agent(org)
    h.policy(org, "agent:*", "view", "deny", enabled=False)
    assert allowed(owner, "view", a)


# --- explain, require, keys ---------------------------------------------------------------------------------------

def test_explain_lists_every_step_and_as_dict(org, owner, member):
    a = h.agent(org)
    g = h.grant(org, a, "use", to=member)
    d = explain(member, "view", a)
    assert isinstance(d, AuthzDecision) and d.allowed and d.decided_by == "grant"
    assert authorize(member, "view", a).reason == d.reason
    body = d.as_dict()
    assert set(body) == {"allowed", "decidedBy", "reason", "steps", "policyIds"}
    assert body["decidedBy"] == "grant" and body["policyIds"] == []
    assert [s["kind"] for s in body["steps"]] == ["membership", "role", "owner", "grant"]  # no policies yet
    assert body["steps"][-1] == {"kind": "grant", "outcome": "allow",
                                 "detail": f'the member holds "use" on {resource_key(a)} (grant {g.id})'}
    h.policy(org, "agent:*", "edit", "allow")
    assert explain(member, "view", a).as_dict()["steps"][-1] == {
        "kind": "policy", "outcome": "skip",
        "detail": f'(not reached) no allow policy applies to "view" on {resource_key(a)}'}
    # explain after the decision keeps going, never adding a second decision
    d = explain(owner, "use", a)
    assert d.decided_by == "role" and [s.outcome for s in d.steps].count("allow") == 1


def test_explain_names_policies_that_did_not_hold(org, owner, member):
    a = h.agent(org)
    p = h.policy(org, "agent:*", "use", "allow", {"user.role": "manager"}, name="Managers")
    d = explain(member, "use", a)
    assert not d.allowed
    last_policy = [s for s in d.steps if s.kind == "policy"][-1]
    assert last_policy.detail == (f'no allow policy holds (policy "Managers" ({p.id}) does not hold: user.role '
                                  f'"user" is not "manager")')


def test_require_allows_quietly_and_audits_a_denial(org, owner, member):
    a = h.agent(org)
    ctx = RequestContext(actor=member.user, ip="10.0.0.9", user_agent="pytest")
    before = AuditEvent.objects.count()
    assert require(owner, "manage", a, context=RequestContext(actor=owner.user)).allowed
    assert AuditEvent.objects.count() == before
    with pytest.raises(PermissionDenied) as exc:
        require(member, "use", a, context=ctx)
    assert exc.value.detail == f'No role, ownership, grant or policy allows "use" on {resource_key(a)}.'
    event = AuditEvent.objects.get(event="AUTHORIZATION_DENIED")
    assert event.details == {"action": "use", "resource": resource_key(a), "reason": exc.value.detail,
                             "decidedBy": "default"}
    assert event.org_id == org.pk and event.user_id == member.user_id and event.ip_address == "10.0.0.9"
    assert event.target_id == a.pk


def test_resource_keys(org, owner, make_org):
    a = h.agent(org)
    assert resource_key(a) == f"agent:{a.pk}"
    assert resolve_resource(org, resource_key(a)) == a
    g = h.group(org, "Ops")
    assert resolve_resource(org, f"group:{g.pk}") == g
    other = make_org("globex")
    for org_, key in ((other, resource_key(a)), (org, "agent:agt_nope"), (org, "nothing:1"), (org, "agent"),
                      (org, "group:not-a-number"), (org, "")):
        with pytest.raises(NotFound):
            resolve_resource(org_, key)


def test_has_permission_reads_the_role_matrix(org, owner, member, make_member):
    admin = make_member(org, "admin")
    assert has_permission(owner, Permission.ORG_BILLING) and not has_permission(admin, Permission.ORG_BILLING)
    assert has_permission(admin, "grants.manage") and not has_permission(member, "grants.manage")
    assert has_permission(member, Permission.ORG_VIEW)
    assert not has_permission(None, Permission.ORG_VIEW) and not has_permission(member, "no.such")


# --- groups as resources ----------------------------------------------------------------------------------------

def test_group_roles_hold_group_actions(org, owner, member, make_member):
    lead = make_member(org, "user")
    ops = h.group(org, "Ops", member)
    h.group(org, "Other")
    from twig_auth.orgs.models import GroupMembership

    GroupMembership.objects.create(group=ops, membership=lead, role="manager")
    assert allowed(member, "member", ops) and not allowed(member, "manager", ops)
    assert allowed(lead, "member", ops) and allowed(lead, "manager", ops) and not allowed(lead, "admin", ops)
    assert allowed(owner, "admin", ops)
    from twig_auth.orgs.models import Group

    assert set(authorized(lead, "manager", Group.objects.all())) == {ops}
    assert set(authorized(owner, "admin", Group.objects.all())) == set(Group.objects.filter(org=org))


# --- credentials' memberships, caching and query counts ---------------------------------------------------------

class _Principal:
    def __init__(self, m: Membership) -> None:
        self.membership_id, self.org_id, self.user_id, self.role = m.pk, m.org_id, m.user_id, m.role


def test_principal_membership_loads_its_row_once(org, owner, member, django_assert_num_queries):
    member.attributes = {"department": "support"}
    member.save()
    a, b = h.agent(org), h.agent(org)
    h.policy(org, "agent:*", "view", "allow", {"user.department": "support"})
    actor = PrincipalMembership(_Principal(member))
    assert allowed(actor, "view", a)
    with django_assert_num_queries(0):
        assert allowed(actor, "view", b)
    member.delete()
    gone = PrincipalMembership(_Principal(Membership(pk=member.pk, org_id=org.pk, user_id=member.user_id,
                                                     role="user")))
    assert authorize(gone, "view", a).decided_by == "membership"


def test_warm_decisions_cost_no_query_and_never_go_stale(org, owner, member, django_assert_num_queries):
    a, b = h.agent(org), h.agent(org)
    store.policy_set(org.pk)  # the org's (empty) policy set, compiled once per process
    m = fresh(member)
    with django_assert_num_queries(1):  # the member's grants (org and user came with the membership)
        assert not allowed(m, "view", a)
    with django_assert_num_queries(0):
        assert not allowed(m, "view", b)
    h.grant(org, b, "view", to=member)  # a write in this process drops the cache
    with django_assert_num_queries(1):
        assert allowed(m, "view", b)
    request_started.disconnect(close_old_connections)  # as Django's test client does
    try:
        request_started.send(sender=None)  # a new request never reuses the last one's grants
    finally:
        request_started.connect(close_old_connections)
    with django_assert_num_queries(1):
        assert allowed(m, "view", b)


def test_cold_enterprise_decision_with_policies_is_a_few_queries(org, owner, member, django_assert_num_queries):
    a, b = h.agent(org), h.agent(org)
    h.group(org, "Support", member)
    h.policy(org, "agent:*", "use", "allow", {"user.groups": {"contains": "Support"}})
    allowed(fresh(owner), "view", a)  # compile the set once in this process
    m = Membership.objects.get(pk=member.pk)
    # the member's groups (user.groups), email (user.email), grants; org and policy version: one cache trip
    with django_assert_num_queries(3):
        assert allowed(m, "use", a)
    with django_assert_num_queries(0):
        assert allowed(m, "use", b)


def test_an_expired_grant_is_not_served_from_the_cache(org, owner, member):
    a = h.agent(org)
    with clock.frozen(h.MONDAY_3PM) as frozen:
        h.grant(org, a, "view", to=member, expires_at=h.MONDAY_3PM + dt.timedelta(minutes=5))
        m = fresh(member)
        assert allowed(m, "view", a)
        frozen.advance(minutes=5)
        assert not allowed(m, "view", a)
        # asking about an earlier moment reloads rather than trusting grants loaded later
        assert allowed(m, "view", a, at=h.MONDAY_3PM)


def test_policies_that_do_not_cover_the_request_cost_nothing(org, owner, member, django_assert_num_queries):
    a = h.agent(org)
    h.policy(org, "data_source:*", "view", "deny", {"user.department": "sales"})
    h.grant(org, a, "use", to=member)
    store.policy_set(org.pk)
    m = Membership.objects.get(pk=member.pk)
    with django_assert_num_queries(1):  # the grants (the org from its cached snapshot): no groups or email
        assert allowed(m, "use", a)


def test_a_credentials_membership_cold_and_after_a_flush(org, owner, member, django_assert_num_queries):
    a = h.agent(org)
    h.grant(org, a, "use", to=member)
    store.policy_set(org.pk)
    with django_assert_num_queries(1):  # the grants: member and org rows were cached when created
        assert allowed(PrincipalMembership(_Principal(member)), "use", a)
    cache.clear()  # a flushed cache (or rows written around the ORM): read them once
    with django_assert_num_queries(3):  # the member row with its org, the policy set, the grants
        assert allowed(PrincipalMembership(_Principal(member)), "use", a)


def test_a_warm_credential_request_reads_no_member_or_org_row(org, owner, member, django_assert_num_queries):
    a = h.agent(org)
    h.grant(org, a, "use", to=member)
    assert allowed(PrincipalMembership(_Principal(owner)), "manage", a)  # warms the shared snapshots
    assert allowed(PrincipalMembership(_Principal(member)), "use", a)
    with django_assert_num_queries(0):  # the next request: role decides, snapshots from the cache
        assert allowed(PrincipalMembership(_Principal(owner)), "manage", a)
    with django_assert_num_queries(1):  # only the member's grants
        assert allowed(PrincipalMembership(_Principal(member)), "use", a)


def test_saved_member_and_org_rows_reach_the_next_request(org, owner, member, make_org):
    a = h.agent(org)
    h.grant(org, a, "use", to=member)
    principal = PrincipalMembership(_Principal(member))
    assert allowed(principal, "use", a, at=h.MONDAY_3PM)
    member.access_control = {"allowedHours": {"start": 0, "end": 1, "timezone": "UTC"}}
    member.save()
    assert authorize(PrincipalMembership(_Principal(member)), "use", a, at=h.MONDAY_3PM).decided_by == "time_window"
    member.access_control = None
    member.attributes = {"department": "contractors"}
    member.save()
    h.policy(org, "agent:*", "use", "deny", {"user.department": "contractors"})
    assert authorize(PrincipalMembership(_Principal(member)), "use", a).decided_by == "policy"
    org.plan = "team"  # policies apply to enterprise orgs only
    org.save()
    credential = _Principal(member)
    assert allowed(PrincipalMembership(credential), "use", a)
    member.delete()
    assert authorize(PrincipalMembership(credential), "use", a).decided_by == "membership"
