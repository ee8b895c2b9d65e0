"""authorized(queryset) agrees with authorize(object) on every object, for random grants, groups, windows,
policies, roles and moments (hypothesis); and its number of queries does not depend on the number of rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.authz import helpers_decisions as h
from twig_auth.authz import store
from twig_auth.authz.decisions import authorize, authorized
from twig_auth.authz.models import Grant, Policy
from twig_auth.orgs.models import Membership
from twig_project.workspace.models import Agent

ROLES = ("super_admin", "admin", "manager", "user")
ACTIONS = ("view", "use", "edit", "manage", "deploy")
DEPARTMENTS = (None, "support", "sales")
ZONES = ("America/New_York", "Europe/Berlin", "Asia/Kolkata", "UTC")
# moments around the 2026 DST changes in New York and Berlin, and an ordinary week
BASES = (dt.datetime(2026, 3, 8, 5, tzinfo=dt.UTC), dt.datetime(2026, 3, 29, 0, tzinfo=dt.UTC),
         dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC), dt.datetime(2026, 6, 15, 0, tzinfo=dt.UTC))

windows = st.one_of(st.none(), st.fixed_dictionaries(
    {"allowedHours": st.fixed_dictionaries({"start": st.integers(0, 23), "end": st.integers(0, 24)},
                                           optional={"timezone": st.sampled_from(ZONES)})},
    optional={"allowedDays": st.lists(st.integers(1, 7), min_size=1, max_size=7, unique=True)}))
moments = st.builds(lambda base, minutes: base + dt.timedelta(minutes=minutes), st.sampled_from(BASES),
                    st.integers(0, 7 * 24 * 60))
grants = st.lists(st.fixed_dictionaries({
    "to": st.sampled_from(("actor", "other", "group", "other_group")),
    "resource": st.one_of(st.just("*"), st.integers(0, 5), st.just("elsewhere")),
    "action": st.sampled_from(ACTIONS),
    "expires": st.sampled_from((None, -120, 1, 120)),  # minutes from the moment asked about
    "window": windows,
}), max_size=6)
conditions = st.lists(st.sampled_from((
    {"user.role": "user"}, {"user.role": "manager"}, {"user.role": {"in": ["admin", "super_admin"]}},
    {"user.department": "support"}, {"user.department": {"!=": "sales"}},
    {"time.hour": {">=": 9}}, {"time.hour": {"<": 17}}, {"time.weekday": {"in": [1, 2, 3, 4, 5]}},
    "owner-is-actor", "in-group",
)), max_size=3, unique_by=str)
policies = st.lists(st.fixed_dictionaries({
    "effect": st.sampled_from(("allow", "deny")),
    "resource": st.one_of(st.sampled_from(("agent:*", "*")), st.integers(0, 5)),
    "action": st.sampled_from((*ACTIONS, "*")),
    "conditions": conditions,
    "timezone": st.sampled_from((None, "Asia/Kolkata")),
}), max_size=4)
scenarios = st.fixed_dictionaries({
    "role": st.sampled_from(ROLES), "department": st.sampled_from(DEPARTMENTS), "member_window": windows,
    "group_window": windows, "grants": grants, "policies": policies, "at": moments,
    "action": st.sampled_from(ACTIONS), "enterprise": st.booleans(),
})


@pytest.fixture
def world(org, owner, make_member, make_org):
    org.settings = {"timezone": "America/New_York"}
    org.save()
    actor, other = make_member(org, "user", email="actor@acme.test"), make_member(org, "user")
    group, other_group = h.group(org, "Support", actor), h.group(org, "Sales", other)
    people = {"actor": actor, "other": other, None: None}
    made = [h.agent(org, created_by=people[c], updated_by=people[u]) for c, u in
            (("actor", None), ("other", "actor"), (None, None), ("other", "other"), ("actor", "actor"),
             (None, "other"))]
    elsewhere = make_org("globex")
    foreign = h.agent(elsewhere, created_by=make_member(elsewhere, "admin"))
    return {"org": org, "actor": actor, "other": other, "group": group, "other_group": other_group,
            "agents": made, "foreign": foreign}


def _condition(c, w):
    if c == "owner-is-actor":
        return {"resource.owner": str(w["actor"].user_id)}
    if c == "in-group":
        return {"user.groups": {"contains": "Support"}}
    return c


def _apply(w, s) -> None:
    org = w["org"]
    org.plan = "enterprise" if s["enterprise"] else "team"
    org.save()
    Membership.objects.filter(pk=w["actor"].pk).update(
        role=s["role"], attributes={"department": s["department"]} if s["department"] else {},
        access_control=s["member_window"])
    w["group"].access_control = s["group_window"]
    w["group"].save()
    Grant.objects.filter(org=org).delete()
    Policy.objects.filter(org=org).delete()
    agents, at = w["agents"], s["at"]
    for g in s["grants"]:
        r = g["resource"]
        resource = "agent:*" if r == "*" else w["foreign"] if r == "elsewhere" else agents[r]
        expires = None if g["expires"] is None else at + dt.timedelta(minutes=g["expires"])
        h.grant(org, resource, g["action"], to=w[g["to"]], expires_at=expires, access_control=g["window"])
    for p in s["policies"]:
        r = p["resource"]
        extra = {"timezone": p["timezone"]} if p["timezone"] else {}
        h.policy(org, f"agent:{agents[r].pk}" if isinstance(r, int) else r, p["action"], p["effect"],
                 *(_condition(c, w) for c in p["conditions"]), **extra)
    store.policies_changed(org.pk)


def _load(w) -> Membership:
    return Membership.objects.get(pk=w["actor"].pk)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(s=scenarios)
def test_queryset_and_object_checks_agree(world, s):
    _apply(world, s)
    at, action = s["at"], s["action"]
    listed = set(authorized(_load(world), action, Agent.objects.all(), at=at))
    one_by_one = _load(world)
    each = {a for a in Agent.objects.all() if authorize(one_by_one, action, a, at=at).allowed}
    assert listed == each
    assert world["foreign"] not in listed
    event(f"allowed {len(listed) if len(listed) < 3 else '3 or more'} of 6")


# --- no N+1 --------------------------------------------------------------------------------------------------

SETUPS = {
    "grants": lambda w: h.grant(w["org"], "agent:*", "use", to=w["group"]),
    "owner and specific grants": lambda w: [h.grant(w["org"], a, "view", to=w["actor"]) for a in w["agents"][:3]],
    "uniform policies": lambda w: h.policy(w["org"], "agent:*", "view", "allow", {"user.role": "user"}),
    "per-row policies": lambda w: (h.policy(w["org"], "agent:*", "view", "deny",
                                            {"resource.owner": str(w["other"].user_id)}),
                                   h.policy(w["org"], f"agent:{w['agents'][2].pk}", "view", "allow")),
}


def _count(w, action: str) -> tuple[int, int]:
    """Queries of one request's authorized() (shared snapshots and compiled policies warm)."""
    list(authorized(_load(w), action, Agent.objects.all()))
    actor = _load(w)
    with CaptureQueriesContext(connection) as ctx:
        rows = list(authorized(actor, action, Agent.objects.all()))
    return len(ctx.captured_queries), len(rows)


@pytest.mark.parametrize("setup", SETUPS)
def test_query_count_does_not_grow_with_rows(world, setup):
    SETUPS[setup](world)
    few, seen_few = _count(world, "view")
    for _ in range(44):  # 6 agents -> 50
        h.agent(world["org"], created_by=world["actor"] if _ % 2 else world["other"])
    many, seen_many = _count(world, "view")
    assert few == many <= 5, (few, many)
    assert seen_many > seen_few


def test_one_agent_vs_fifty(org, owner, make_member, django_assert_num_queries):
    actor = make_member(org, "user")
    h.agent(org, created_by=actor)
    h.grant(org, "agent:*", "view", to=h.group(org, "All", actor))
    store.policy_set(org.pk)
    for expected_rows in (1, 50):
        while Agent.objects.count() < expected_rows:
            h.agent(org)
        fresh = Membership.objects.select_related("org", "user").get(pk=actor.pk)
        with django_assert_num_queries(2):  # the member's grants, then the rows
            assert len(list(authorized(fresh, "view", Agent.objects.all()))) == expected_rows
