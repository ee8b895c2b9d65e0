"""The policy engine: every operator on every attribute, deny overrides, wildcards, reasons, and the index
agreeing with a naive scan of the raw documents."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twig_auth.authz.attributes import MISSING, Attributes
from twig_auth.authz.engine import PolicySet
from twig_auth.exceptions import InvalidInput

# Monday 2026-03-09 14:30 UTC: 10:30 Monday in New York (EDT), 20:00 Monday in Kolkata,
# 03:30 Tuesday 2026-03-10 in Auckland (NZDT), 15:30 Monday in Berlin (CET).
NOW = dt.datetime(2026, 3, 9, 14, 30, tzinfo=dt.UTC)
USER = {"role": "manager", "id": 42, "email": "Ann@Acme.TEST", "groups": ["support", "oncall"],
        "department": "support", "level": 3, "flag": True, "skills": ["python", "sql"], "cost_center": "cc-7"}


def attrs(user=None, *, resource_type="agent", resource_id="agent-123", resource=None, ip="10.1.2.3", mfa=True,
          now=NOW, timezone="America/New_York"):
    return Attributes(user=USER if user is None else user, resource_type=resource_type, resource_id=resource_id,
                      resource={"owner": "42", "tags": ["beta", "eu"]} if resource is None else resource, ip=ip,
                      mfa=mfa, now=now, timezone=timezone)


def doc(*conditions, resource="agent:*", action="use", effect="allow", **extra):
    return {"policy": {"resource": resource, "action": action, "effect": effect, "conditions": list(conditions),
                       **extra}}


def holds(condition, **kwargs):
    """Return whether ``condition`` holds for the request built from ``kwargs`` (one allow policy)."""
    decision = PolicySet.compile([("p", doc(condition))]).decide(attrs(**kwargs), "use")
    return decision.effect == "allow"


# --- every operator on every attribute ------------------------------------------------------------------

VECTORS = [
    # user.role
    ({"user.role": "manager"}, {}, True),
    ({"user.role": "admin"}, {}, False),
    ({"user.role": {"==": "manager"}}, {}, True),
    ({"user.role": {"!=": "admin"}}, {}, True),
    ({"user.role": {"!=": "manager"}}, {}, False),
    ({"user.role": {"in": ["admin", "manager"]}}, {}, True),
    ({"user.role": {"in": ["admin", "super_admin"]}}, {}, False),
    ({"user.role": {"not_in": ["admin", "super_admin"]}}, {}, True),
    ({"user.role": {"not_in": ["manager"]}}, {}, False),
    ({"user.role": {"contains": "anag"}}, {}, True),
    ({"user.role": {"contains": "adm"}}, {}, False),
    # user.id: a pk arrives as an int, policies name ids as strings
    ({"user.id": "42"}, {}, True),
    ({"user.id": {"in": ["1", "42"]}}, {}, True),
    ({"user.id": "4"}, {}, False),
    # user.email / email_domain: case-insensitive, domain derived from the email
    ({"user.email": "ann@acme.test"}, {}, True),
    ({"user.email": "ANN@ACME.test"}, {}, True),
    ({"user.email": {"contains": "@acme."}}, {}, True),
    ({"user.email": {"!=": "bob@acme.test"}}, {}, True),
    ({"user.email_domain": "acme.test"}, {}, True),
    ({"user.email_domain": {"in": ["ACME.test", "other.test"]}}, {}, True),
    ({"user.email_domain": {"not_in": ["acme.test"]}}, {}, False),
    ({"user.email_domain": "acme.test"}, {"user": {"email": "x@Other.test"}}, False),
    ({"user.email_domain": "given.test"}, {"user": {"email": "x@a.test", "email_domain": "Given.TEST"}}, True),
    # user.groups: a set
    ({"user.groups": {"contains": "support"}}, {}, True),
    ({"user.groups": {"contains": "billing"}}, {}, False),
    ({"user.groups": {"in": ["billing", "oncall"]}}, {}, True),
    ({"user.groups": {"in": ["billing", "sales"]}}, {}, False),
    ({"user.groups": {"not_in": ["billing", "sales"]}}, {}, True),
    ({"user.groups": {"not_in": ["billing", "oncall"]}}, {}, False),
    ({"user.groups": {"not_in": ["billing"]}}, {"user": {"role": "user", "groups": []}}, True),
    # free-form member attributes
    ({"user.department": "support"}, {}, True),
    ({"user.department": "sales"}, {}, False),
    ({"user.department": {"!=": "sales"}}, {}, True),
    ({"user.department": {"in": ["it", "support"]}}, {}, True),
    ({"user.department": {"not_in": ["it", "support"]}}, {}, False),
    ({"user.department": {"contains": "port"}}, {}, True),
    ({"user.department": {">=": "s", "<": "t"}}, {}, True),
    ({"user.skills": {"contains": "sql"}}, {}, True),
    ({"user.skills": {"contains": "go"}}, {}, False),
    ({"user.level": {">=": 3}}, {}, True),
    ({"user.level": {">": 3}}, {}, False),
    ({"user.level": {"<=": 3.5, ">": 2}}, {}, True),
    ({"user.level": {"<": 3}}, {}, False),
    ({"user.level": 3}, {}, True),
    ({"user.level": 3.0}, {}, True),
    ({"user.level": "3"}, {}, False),  # a string is not a number
    ({"user.level": {">=": "1"}}, {}, False),  # comparing across types is false, not an error
    ({"user.level": {"in": [3, 4]}}, {}, True),
    ({"user.flag": True}, {}, True),
    ({"user.flag": 1}, {}, False),  # True is not 1
    ({"user.flag": {"in": [1, 2]}}, {}, False),
    ({"user.flag": {"in": [1, True]}}, {}, True),
    ({"user.level": True}, {}, False),
    ({"user.flag": {"!=": False}}, {}, True),
    ({"user.cost_center": {"contains": "cc-"}}, {}, True),
    ({"user.department": {">": 5}}, {}, False),
    ({"user.skills": "python"}, {}, False),  # a list is not equal to one of its members
    ({"user.skills": {"!=": "go"}}, {}, False),  # nor comparable
    ({"user.skills": {"not_in": ["go"]}}, {}, False),
    # resource.*
    ({"resource.type": "agent"}, {}, True),
    ({"resource.type": {"in": ["data_source"]}}, {}, False),
    ({"resource.id": "agent-123"}, {}, True),
    ({"resource.id": {"contains": "-12"}}, {}, True),
    ({"resource.id": {"not_in": ["agent-123"]}}, {}, False),
    ({"resource.owner": "42"}, {}, True),
    ({"resource.owner": "42"}, {"resource": {"owner": 42}}, True),
    ({"resource.owner": {"!=": "42"}}, {}, False),
    ({"resource.tags": {"contains": "beta"}}, {}, True),
    ({"resource.tags": {"in": ["ga", "eu"]}}, {}, True),
    ({"resource.tags": {"not_in": ["ga", "eu"]}}, {}, False),
    ({"resource.tags": {"contains": "beta"}}, {"resource": {"tags": "beta"}}, False),  # a string is not a set
    # time.* in the org's zone (New York, 10:30 Monday 2026-03-09)
    ({"time.hour": 10}, {}, True),
    ({"time.hour": {">=": 9, "<=": 17}}, {}, True),
    ({"time.hour": {">=": 9, "<": 10}}, {}, False),
    ({"time.hour": {">": 10}}, {}, False),
    ({"time.hour": {"!=": 10}}, {}, False),
    ({"time.hour": {"in": [9, 10, 11]}}, {}, True),
    ({"time.hour": {"not_in": [10]}}, {}, False),
    ({"time.minute": 30}, {}, True),
    ({"time.minute": {"<": 30}}, {}, False),
    ({"time.weekday": 1}, {}, True),
    ({"time.weekday": {"in": [6, 7]}}, {}, False),
    ({"time.date": "2026-03-09"}, {}, True),
    ({"time.date": {">=": "2026-03-01", "<": "2026-04-01"}}, {}, True),
    ({"time.date": {">": "2026-03-09"}}, {}, False),
    ({"time.date": {"not_in": ["2026-12-25"]}}, {}, True),
    ({"time.hour": 20}, {"timezone": "Asia/Kolkata"}, True),
    ({"time.weekday": 2}, {"timezone": "Pacific/Auckland"}, True),
    ({"time.date": "2026-03-10"}, {"timezone": "Pacific/Auckland"}, True),
    ({"time.hour": 15}, {"timezone": "Europe/Berlin"}, True),
    ({"time.hour": 14}, {"timezone": "UTC"}, True),
    # request.ip
    ({"request.ip": "10.1.2.3"}, {}, True),
    ({"request.ip": "10.1.2.4"}, {}, False),
    ({"request.ip": {"!=": "10.1.2.4"}}, {}, True),
    ({"request.ip": {"in": ["10.1.2.3", "10.1.2.4"]}}, {}, True),
    ({"request.ip": {"not_in": ["10.1.2.3"]}}, {}, False),
    ({"request.ip": {"cidr": "10.0.0.0/8"}}, {}, True),
    ({"request.ip": {"cidr": "192.168.0.0/16"}}, {}, False),
    ({"request.ip": {"cidr": ["192.168.0.0/16", "10.1.2.0/24"]}}, {}, True),
    ({"request.ip": {"cidr": ["2001:db8::/32"]}}, {}, False),
    ({"request.ip": {"cidr": "2001:db8::/32"}}, {"ip": "2001:db8::1"}, True),
    ({"request.ip": {"cidr": "2001:db8::/32"}}, {"ip": "2001:db9::1"}, False),
    ({"request.ip": {"cidr": "10.0.0.0/8"}}, {"ip": "::ffff:10.9.9.9"}, True),
    ({"request.ip": "2001:db8::1"}, {"ip": "2001:DB8:0::1"}, True),
    ({"request.ip": {"cidr": "10.0.0.0/8"}}, {"ip": "not an ip"}, False),
    # request.mfa
    ({"request.mfa": True}, {}, True),
    ({"request.mfa": False}, {}, False),
    ({"request.mfa": {"!=": True}}, {"mfa": False}, True),
    ({"request.mfa": False}, {"mfa": False}, True),
]


@pytest.mark.parametrize(("condition", "request_", "expected"), VECTORS,
                         ids=[f"{i}-{next(iter(c))}" for i, (c, _, _) in enumerate(VECTORS)])
def test_operator_vectors(condition, request_, expected):
    assert holds(condition, **request_) is expected


MISSING_CASES = [
    ({"user.department": {"!=": "sales"}}, {"user": {"role": "user"}}),
    ({"user.department": {"not_in": ["sales"]}}, {"user": {"role": "user"}}),
    ({"user.role": {"!=": "admin"}}, {"user": {"department": "x"}}),
    ({"user.groups": {"not_in": ["x"]}}, {"user": {"role": "user"}}),
    ({"user.department": {"!=": "sales"}}, {"user": {"department": None}}),
    ({"resource.owner": {"!=": "1"}}, {"resource": {}}),
    ({"resource.tags": {"not_in": ["x"]}}, {"resource": {}}),
    ({"request.ip": {"not_in": ["10.0.0.1"]}}, {"ip": None}),
    ({"request.ip": {"!=": "10.0.0.1"}}, {"ip": ""}),
    ({"request.mfa": {"!=": True}}, {"mfa": None}),
    ({"time.hour": {"not_in": [3]}}, {"timezone": "Not/AZone"}),
    ({"time.date": {"!=": "2026-01-01"}}, {"timezone": ""}),
]


@pytest.mark.parametrize(("condition", "request_"), MISSING_CASES)
def test_a_missing_attribute_makes_any_condition_false(condition, request_):
    assert holds(condition, **request_) is False


def test_policy_timezone_overrides_the_org_timezone():
    kolkata = doc({"time.hour": 20}, timezone="Asia/Kolkata")
    ps = PolicySet.compile([("k", kolkata)])
    assert ps.decide(attrs(timezone="America/New_York"), "use").allowed
    assert ps.decide(attrs(timezone="Asia/Kolkata"), "use").allowed
    ps = PolicySet.compile([("org", doc({"time.hour": 20}))])
    assert not ps.decide(attrs(timezone="America/New_York"), "use").allowed


def test_attributes_refuse_a_naive_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        attrs(now=dt.datetime(2026, 3, 9, 14, 30))


def test_attributes_compute_each_zone_once_and_read_by_path():
    a = attrs()
    assert a.local_time("Asia/Kolkata").isoformat() == "2026-03-09T20:00:00+05:30"
    assert a.local_time("Asia/Kolkata") is a.local_time("Asia/Kolkata")
    assert a.local_time().isoformat() == "2026-03-09T10:30:00-04:00"
    assert [a.get(f"time.{p}") for p in ("hour", "minute", "weekday", "date")] == [10, 30, 1, "2026-03-09"]
    assert a.get("time.weekday", "Pacific/Auckland") == 2
    assert a.get("time.date", "Pacific/Auckland") == "2026-03-10"
    assert a.get("user.email_domain") == "acme.test"
    assert a.get("request.ip") == ipaddress.ip_address("10.1.2.3")
    assert a.get("user.nothing") is MISSING
    assert a.local_time("Bad/Zone") is None and a.get("time.hour", "Bad/Zone") is MISSING


# --- decisions: deny overrides, wildcards, no decision --------------------------------------------------

BUSINESS_HOURS = doc({"user.role": "manager"}, {"user.department": "support"}, {"time.hour": {">=": 9, "<=": 17}},
                     resource="agent:agent-123")
AFTER_HOURS = doc({"time.hour": {"not_in": [9, 10, 11, 12, 13, 14, 15, 16, 17]}}, resource="agent:*", action="*",
                  effect="deny")


def test_allow_when_every_condition_holds():
    ps = PolicySet.compile([("business-hours", BUSINESS_HOURS), ("after-hours-deny", AFTER_HOURS)])
    decision = ps.decide(attrs(), "use")
    assert (decision.effect, decision.policy_ids) == ("allow", ("business-hours",))
    assert decision.allowed and not decision.denied
    assert decision.reason == ('policy "business-hours" allows "use" on agent:agent-123: user.role is "manager"; '
                               'user.department is "support"; time.hour 10 >= 9 and <= 17')


def test_deny_overrides_allow():
    late = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)  # 23:00 Monday in New York
    always = doc(resource="agent:agent-123")
    ps = PolicySet.compile([("always", always), ("after-hours-deny", AFTER_HOURS)])
    decision = ps.decide(attrs(now=late), "use")
    assert (decision.effect, decision.policy_ids) == ("deny", ("after-hours-deny",))
    assert decision.denied
    assert decision.reason == ('policy "after-hours-deny" denies "use" on agent:agent-123: time.hour 23 is not in '
                               "[9, 10, 11, 12, 13, …]")
    assert ps.decide(attrs(), "use").effect == "allow"  # the deny does not hold at 10:30


def test_every_holding_deny_is_named_in_policy_order():
    ps = PolicySet.compile([("d2", doc(effect="deny", resource="*")), ("a", doc()),
                            ("d1", doc({"user.role": "manager"}, effect="deny", action="*")),
                            ("d3", doc({"user.role": "admin"}, effect="deny"))])
    decision = ps.decide(attrs(), "use")
    assert decision.policy_ids == ("d2", "d1")
    assert decision.reason == ('policy "d2" denies "use" on agent:agent-123: it has no conditions; policy "d1" '
                               'denies "use" on agent:agent-123: user.role is "manager"')


def test_no_policy_applies():
    ps = PolicySet.compile([("other", doc(resource="data_source:*"))])
    decision = ps.decide(attrs(), "use")
    assert (decision.effect, decision.policy_ids, decision.candidates) == (None, (), ())
    assert decision.reason == 'no policy applies to "use" on agent:agent-123'


def test_no_policy_decides_names_what_did_not_hold():
    ps = PolicySet.compile([("business-hours", BUSINESS_HOURS), ("after-hours-deny", AFTER_HOURS)])
    decision = ps.decide(attrs(user={"role": "user", "department": "support"}), "use")
    assert decision.effect is None
    assert decision.reason == ('no policy decides "use" on agent:agent-123: policy "after-hours-deny" (deny) does '
                               'not hold: time.hour 10 is in [9, 10, 11, 12, 13, …]; policy "business-hours" (allow) '
                               'does not hold: user.role "user" is not "manager"')
    traces = decision.traces()
    assert [(t.policy_id, t.effect, t.held) for t in traces] == [("after-hours-deny", "deny", False),
                                                                  ("business-hours", "allow", False)]


def test_reason_names_a_missing_attribute_and_caps_the_list():
    policies = [(f"p{i}", doc({"user.department": "it"})) for i in range(7)]
    decision = PolicySet.compile(policies).decide(attrs(user={"role": "user"}), "use")
    assert decision.reason.endswith('policy "p4" (allow) does not hold: user.department is missing; and 2 more')


@pytest.mark.parametrize(("resource", "action", "request_", "applies"), [
    ("agent:agent-123", "use", ("agent", "agent-123", "use"), True),
    ("agent:agent-123", "use", ("agent", "agent-124", "use"), False),
    ("agent:agent-123", "use", ("agent", "agent-123", "edit"), False),
    ("agent:agent-123", "*", ("agent", "agent-123", "edit"), True),
    ("agent:*", "use", ("agent", "agent-999", "use"), True),
    ("agent:*", "use", ("data_source", "agent-999", "use"), False),
    ("agent:*", "*", ("agent", "x", "manage"), True),
    ("*", "use", ("data_source", "ds-1", "use"), True),
    ("*", "use", ("data_source", "ds-1", "process"), False),
    ("*", "*", ("group", "g-1", "member"), True),
])
def test_wildcards(resource, action, request_, applies):
    ps = PolicySet.compile([("p", doc(resource=resource, action=action))])
    rtype, rid, act = request_
    decision = ps.decide(attrs(resource_type=rtype, resource_id=rid), act)
    assert (decision.effect == "allow") is applies
    assert (ps.candidates(rtype, rid, act) != ()) is applies


def test_literal_star_in_a_request_is_not_counted_twice():
    ps = PolicySet.compile([("p", doc(resource="agent:*", action="*"))])
    assert [p.id for p in ps.candidates("agent", "*", "*")] == ["p"]


def test_candidates_are_denies_then_allows_in_policy_order():
    ps = PolicySet.compile([("a1", doc(resource="*")), ("d1", doc(effect="deny", action="*")),
                            ("a2", doc(resource="agent:agent-123")), ("d2", doc(effect="deny")),
                            ("x", doc(resource="agent:agent-9"))])
    assert [p.id for p in ps.candidates("agent", "agent-123", "use")] == ["d1", "d2", "a1", "a2"]
    assert [p.id for p in ps.decide(attrs(), "use").candidates] == ["d1", "d2", "a1", "a2"]


def test_decision_is_immutable_and_compares_by_outcome():
    ps = PolicySet.compile([("p", doc())])
    decision = ps.decide(attrs(), "use")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.effect = "deny"  # type: ignore[misc]
    assert decision == ps.decide(attrs(user={**USER, "department": "other"}), "use")
    assert decision.resource == "agent:agent-123"


def test_compile_reports_every_policy_problem_under_its_id():
    with pytest.raises(InvalidInput) as exc:
        PolicySet.compile([("ok", doc()), ("bad", doc({"time.hour": 30}, effect="x")), ("ok", doc())])
    assert exc.value.errors == {
        "policies.bad.policy.effect": ['Must be "allow" or "deny".'],
        "policies.bad.policy.conditions.0.time.hour": ["Must be between 0 and 23."],
        "policies.ok": ["Duplicate policy id."],
    }


def test_policy_set_lookup_helpers():
    ps = PolicySet.compile([("a", doc()), ("b", doc(effect="deny"))])
    assert len(ps) == 2 and [p.id for p in ps] == ["a", "b"]
    assert ps.get("b").effect == "deny" and ps.get("zzz") is None
    with pytest.raises(ValueError, match="duplicate"):
        PolicySet([ps.get("a"), ps.get("a")])


def test_a_decision_evaluates_only_its_candidates():
    calls: list[str] = []
    policies = [(f"p{i}", doc({"user.department": "it"}, resource=f"agent:a{i}")) for i in range(2000)]
    ps = PolicySet.compile(policies)
    original = ps._merge  # wrap the candidates the index hands out, counting which policies are evaluated

    def counting_merge(*args):
        denies, allows = original(*args)
        wrapped = tuple((lambda a, t=t, pid=p.id: calls.append(pid) or t(a), p) for t, p in allows)
        return denies, wrapped

    ps._merge = counting_merge  # type: ignore[method-assign]
    ps.decide(attrs(resource_id="a1500"), "use")
    assert calls == ["p1500"]


def test_memo_stays_bounded_for_ids_without_policies():
    ps = PolicySet.compile([("p", doc(resource="agent:known")), ("w", doc(resource="agent:*"))])
    for i in range(500):
        ps.decide(attrs(resource_id=f"other-{i}"), "use")
    ps.decide(attrs(resource_id="known"), "use")
    assert len(ps._memo) == 2


# --- property: the index agrees with a naive scan of the raw documents -----------------------------------

RESOURCES = ["*", "agent:*", "agent:a1", "agent:a2", "data_source:*", "data_source:d1"]
ACTIONS = ["*", "use", "edit", "view"]
CONDITION_POOL = [
    {"user.role": "manager"}, {"user.role": {"in": ["admin", "super_admin"]}}, {"user.role": {"!=": "user"}},
    {"user.department": "support"}, {"user.department": {"not_in": ["sales"]}},
    {"user.groups": {"contains": "oncall"}}, {"user.groups": {"in": ["a", "b"]}},
    {"user.level": {">=": 3}}, {"user.level": {"<": 2}},
    {"resource.tags": {"contains": "beta"}}, {"resource.owner": "42"},
    {"time.hour": {">=": 9, "<": 17}}, {"time.weekday": {"in": [6, 7]}}, {"time.date": {">=": "2026-06-01"}},
    {"request.ip": {"cidr": "10.0.0.0/8"}}, {"request.ip": {"not_in": ["10.0.0.1"]}}, {"request.mfa": True},
]


def naive_holds(condition, request):
    """Evaluate one raw condition from first principles (independent of the compiled predicates)."""
    (path, spec), = condition.items()
    value = request.get(path)
    if value is None:
        return False
    ops = spec if isinstance(spec, dict) else {"==": spec}
    for op, operand in ops.items():
        if op == "==":
            ok = value == operand
        elif op == "!=":
            ok = value != operand
        elif op == "in":
            ok = bool(set(value) & set(operand)) if isinstance(value, list) else value in operand
        elif op == "not_in":
            ok = not set(value) & set(operand) if isinstance(value, list) else value not in operand
        elif op == "contains":
            ok = operand in value
        elif op == "cidr":
            ok = ipaddress.ip_address(value) in ipaddress.ip_network(operand)
        else:
            ok = {">=": value >= operand, "<=": value <= operand, ">": value > operand, "<": value < operand}[op]
        if not ok:
            return False
    return True


def naive_decide(documents, request, rtype, rid, action):
    def applies(body):
        r = body["resource"]
        return ((r == "*" or r == f"{rtype}:*" or r == f"{rtype}:{rid}") and body["action"] in ("*", action)
                and all(naive_holds(c, request) for c in body.get("conditions", [])))
    held = [(pid, d["policy"]["effect"]) for pid, d in documents if applies(d["policy"])]
    for effect in ("deny", "allow"):
        ids = tuple(pid for pid, e in held if e == effect)
        if ids:
            return effect, ids
    return None, ()


policy_docs = st.builds(lambda r, a, e, cs: doc(*cs, resource=r, action=a, effect=e),
                        st.sampled_from(RESOURCES), st.sampled_from(ACTIONS), st.sampled_from(["allow", "deny"]),
                        st.lists(st.sampled_from(CONDITION_POOL), max_size=3))
requests = st.fixed_dictionaries({
    "role": st.sampled_from(["user", "manager", "admin", "super_admin"]),
    "department": st.sampled_from(["support", "sales", None]),
    "groups": st.lists(st.sampled_from(["a", "b", "oncall"]), unique=True),
    "level": st.one_of(st.none(), st.integers(0, 5)),
    "tags": st.lists(st.sampled_from(["beta", "eu"]), unique=True),
    "owner": st.sampled_from(["42", "7", None]),
    "instant": st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31),
                            timezones=st.just(dt.UTC)),
    "ip": st.sampled_from(["10.0.0.1", "10.2.3.4", "192.168.1.1", None]),
    "mfa": st.sampled_from([True, False, None]),
    "target": st.sampled_from([("agent", "a1"), ("agent", "a2"), ("agent", "a3"), ("data_source", "d1"),
                               ("group", "g1")]),
    "action": st.sampled_from(["use", "edit", "view", "manage"]),
})


@settings(max_examples=400, deadline=None)
@given(st.lists(policy_docs, max_size=25), requests)
def test_indexed_decision_equals_a_naive_linear_scan(documents, r):
    named = [(f"p{i}", d) for i, d in enumerate(documents)]
    ps = PolicySet.compile(named)
    rtype, rid = r["target"]
    local = r["instant"].astimezone(dt.timezone(dt.timedelta(hours=1)))  # the org's zone below is UTC+1, no DST
    flat = {"user.role": r["role"], "user.department": r["department"], "user.groups": r["groups"],
            "user.level": r["level"], "resource.tags": r["tags"], "resource.owner": r["owner"],
            "time.hour": local.hour, "time.weekday": local.isoweekday(), "time.date": local.date().isoformat(),
            "request.ip": r["ip"], "request.mfa": r["mfa"]}
    a = Attributes(user={"role": r["role"], "department": r["department"], "groups": r["groups"],
                         "level": r["level"]},
                   resource_type=rtype, resource_id=rid, resource={"tags": r["tags"], "owner": r["owner"]},
                   ip=r["ip"], mfa=r["mfa"], now=r["instant"], timezone="Etc/GMT-1")
    decision = ps.decide(a, r["action"])
    assert (decision.effect, decision.policy_ids) == naive_decide(named, flat, rtype, rid, r["action"])
    # asking twice (memo warm) gives the same answer
    assert ps.decide(a, r["action"]).policy_ids == decision.policy_ids
