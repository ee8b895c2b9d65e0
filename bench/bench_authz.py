"""B7/B8: ABAC decision latency and policy compile time, ours vs cedarpy (pre-parsed) and pycasbin (ABAC model).

The same product-shaped policy set is given to the three engines at N = 10, 100, 1 000 and 10 000 policies:

* ``deny-contractors``: forbid every action on every agent when ``user.department == "contractors"``;
* ``super-admins``: permit everything to ``user.role == "super_admin"``;
* N − 2 exact allows on ``agent:agent-<i>``, action ``use``, when ``user.role in [...]`` (two role lists),
  ``user.department == <one of 10>`` and ``<start> <= time.hour < <end>`` (three windows), the hour read in
  the org's time zone (America/New_York).

Requests: *hit* matches the **last** exact allow (the worst case for a linear engine); *no match* names an agent
with no policy of its own (only the wildcards apply); *deny* is the hit request from a contractor. Every
engine must give the same answer before it is timed.

Each timed call builds the request from the same raw inputs: ours builds ``Attributes`` (its time parts are
computed in the zone on first use) and calls ``PolicySet.decide``; cedarpy gets the local hour computed with
``zoneinfo`` in its context, a ``PolicySet`` parsed once and an ``Entities`` handle parsed once (its docs'
fast path); pycasbin gets ``Enforcer.enforce(sub, obj, act, env)`` with an ``eval()`` matcher.

Targets (``research/performance.md`` B7/B8): median ≤ 10 µs at N = 1 000; ≥ 50× cedarpy at N = 1 000; ≥ 5×
cedarpy at N = 10; ≥ 1 000× pycasbin at N = 1 000; < 2× growth from N = 10 to N = 10 000; compiling
10 000 policies ≤ 100 ms (with conditions repeating across policies, as templates make them; the same set
with every condition distinct is reported too).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import casbin
import cedarpy

from bench.harness import Pair, Row, alternate, fmt_time, per_call, samples_note
from twig_auth.authz.attributes import Attributes
from twig_auth.authz.engine import PolicySet

SIZES = (10, 100, 1_000, 10_000)
TZ = "America/New_York"
ZONE = ZoneInfo(TZ)
NOW = dt.datetime(2026, 3, 9, 15, 0, tzinfo=dt.UTC)  # 11:00 Monday in New York
ROLE_LISTS = (["manager", "admin"], ["admin", "super_admin", "manager"])
DEPARTMENTS = ("finance", "support", "sales", "legal", "it", "ops", "hr", "research", "marketing", "security")
WINDOWS = ((9, 17), (8, 18), (10, 16))
CASBIN_MODEL = """
[request_definition]
r = sub, obj, act, env

[policy_definition]
p = sub_rule, obj, act, eft

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = keyMatch(r.obj, p.obj) && (r.act == p.act || p.act == "*") && eval(p.sub_rule)
"""


# --- one policy set, three spellings ----------------------------------------------------------------------

def _spec(i: int, distinct: bool = False) -> tuple[list[str], str, tuple[int, int]]:
    department = f"dept-{i}" if distinct else DEPARTMENTS[i % len(DEPARTMENTS)]
    return ROLE_LISTS[i % 2], department, WINDOWS[i % 3]


def ours_documents(n: int, *, distinct: bool = False) -> list[tuple[str, dict[str, Any]]]:
    docs: list[tuple[str, dict[str, Any]]] = [
        ("deny-contractors", {"policy": {"resource": "agent:*", "action": "*", "effect": "deny",
                                         "conditions": [{"user.department": "contractors"}]}}),
        ("super-admins", {"policy": {"resource": "*", "action": "*", "effect": "allow",
                                     "conditions": [{"user.role": "super_admin"}]}}),
    ]
    for i in range(n - 2):
        roles, department, (start, end) = _spec(i, distinct)
        docs.append((f"p{i}", {"policy": {"resource": f"agent:agent-{i}", "action": "use", "effect": "allow",
                                          "conditions": [{"user.role": {"in": roles}},
                                                         {"user.department": department},
                                                         {"time.hour": {">=": start, "<": end}}]}}))
    return docs


def cedar_text(n: int) -> str:
    lines = ['@id("deny-contractors")\nforbid(principal, action, resource is Agent) '
             'when { principal.department == "contractors" };',
             '@id("super-admins")\npermit(principal, action, resource) when { principal.role == "super_admin" };']
    for i in range(n - 2):
        roles, department, (start, end) = _spec(i)
        lines.append(f'@id("p{i}")\npermit(principal, action == Action::"use", resource == Agent::"agent-{i}") '
                     f'when {{ {json.dumps(roles)}.contains(principal.role) && principal.department == '
                     f'"{department}" && context.hour >= {start} && context.hour < {end} }};')
    return "\n".join(lines)


def casbin_enforcer(n: int) -> casbin.Enforcer:
    model = casbin.Model()
    model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.Enforcer(model)
    rules = [["r.sub.department == 'contractors'", "agent:*", "*", "deny"],
             ["r.sub.role == 'super_admin'", "*", "*", "allow"]]
    for i in range(n - 2):
        roles, department, (start, end) = _spec(i)
        rules.append([f"r.sub.role in {tuple(roles)!r} && r.sub.department == '{department}' && "
                      f"r.env.hour >= {start} && r.env.hour < {end}", f"agent:agent-{i}", "use", "allow"])
    enforcer.add_policies(rules)
    return enforcer


# --- requests -----------------------------------------------------------------------------------------------

def _cases(n: int) -> dict[str, tuple[dict[str, str], str, str | None]]:
    """name -> (user, agent id, expected effect)."""
    last = n - 3
    roles, department, _ = _spec(last)
    user = {"role": roles[0], "department": department}
    return {"hit": (user, f"agent-{last}", "allow"),
            "no match": (user, "agent-unknown", None),
            "deny": ({**user, "department": "contractors"}, f"agent-{last}", "deny")}


def _ours(ps: PolicySet, user: dict[str, str], agent: str) -> Callable[[], Any]:
    def call() -> Any:
        return ps.decide(Attributes(user=user, resource_type="agent", resource_id=agent, now=NOW, timezone=TZ),
                         "use").effect
    return call


def _cedar(ps: Any, user: dict[str, str], agent: str) -> Callable[[], Any]:
    entities = cedarpy.Entities.from_json_str(json.dumps(
        [{"uid": {"type": "User", "id": "u1"}, "attrs": user, "parents": []}]))
    effects = {cedarpy.Decision.Allow: "allow"}

    def call() -> Any:
        hour = NOW.astimezone(ZONE).hour
        result = cedarpy.is_authorized({"principal": 'User::"u1"', "action": 'Action::"use"',
                                        "resource": f'Agent::"{agent}"', "context": {"hour": hour}}, ps, entities)
        # Cedar has no "no decision": a deny without a forbid is its default
        return effects.get(result.decision, "deny" if result.diagnostics.reasons else None)
    return call


def _casbin(enforcer: casbin.Enforcer, user: dict[str, str], agent: str) -> Callable[[], Any]:
    def call() -> Any:
        allowed = enforcer.enforce(user, f"agent:{agent}", "use", {"hour": NOW.astimezone(ZONE).hour})
        return "allow" if allowed else "not allowed"
    return call


def _check(name: str, fn: Callable[[], Any], expected: Any) -> None:
    got = fn()
    if got != expected:
        raise AssertionError(f"{name}: expected {expected!r}, got {got!r}")


def _calls(fn: Callable[[], Any], budget: float) -> int:
    """Return how many calls of ``fn`` fill about ``budget`` seconds (at least 1)."""
    start = time.perf_counter()
    fn()
    one = time.perf_counter() - start
    return max(1, min(20_000, int(budget / max(one, 1e-7))))


def _speed_row(name: str, pair: Pair, minimum: float | None, extra: str = "", limit_ours: float | None = None
               ) -> Row:
    ratio = pair.peer / pair.ours
    met: bool | None = None
    target = "reported"
    if minimum is not None:
        met = ratio >= minimum and (limit_ours is None or pair.ours <= limit_ours)
        target = f"≥ {minimum:,}× faster" + (f", ours ≤ {fmt_time(limit_ours)}" if limit_ours else "")
    return Row(name, fmt_time(pair.ours), fmt_time(pair.peer), f"{ratio:,.1f}× faster", target, met,
               f"{samples_note(pair, fmt_time)}{extra}")


def run(*, quick: bool) -> list[Row]:
    logging.getLogger("casbin").setLevel(logging.ERROR)  # it logs every refused request as a warning
    budget = 0.02 if quick else 0.1
    rows: list[Row] = []
    hit_medians: dict[int, float] = {}
    cedar_targets = {10: 5, 1_000: 50}
    casbin_targets = {1_000: 1_000}
    for n in SIZES:
        ours_set = PolicySet.compile(ours_documents(n))
        cedar_set = cedarpy.PolicySet.from_str(cedar_text(n))
        enforcer = casbin_enforcer(n)
        for case, (user, agent, effect) in _cases(n).items():
            if case != "hit" and n not in (1_000,):
                continue
            ours = _ours(ours_set, user, agent)
            cedar = _cedar(cedar_set, user, agent)
            _check(f"ours {case} N={n}", ours, effect)
            _check(f"cedarpy {case} N={n}", cedar, effect if effect else None)
            ours_calls, cedar_calls = _calls(ours, budget), _calls(cedar, budget)
            pair = alternate(lambda o=ours, c=ours_calls: per_call(o, c),
                             lambda p=cedar, c=cedar_calls: per_call(p, c))
            if case == "hit":
                hit_medians[n] = pair.ours
            target = cedar_targets.get(n) if case == "hit" else None
            rows.append(_speed_row(f"ABAC decision, {case}, N={n:,}: `PolicySet.decide` vs cedarpy (pre-parsed)",
                                   pair, target, limit_ours=10e-6 if (n == 1_000 and case == "hit") else None))
            if case == "hit":
                peer = _casbin(enforcer, user, agent)
                _check(f"pycasbin {case} N={n}", peer, "allow")
                peer_calls = _calls(peer, budget)
                pair = alternate(lambda o=ours, c=ours_calls: per_call(o, c),
                                 lambda p=peer, c=peer_calls: per_call(p, c), repeats=5)
                rows.append(_speed_row(f"ABAC decision, hit, N={n:,}: `PolicySet.decide` vs pycasbin `Enforcer` "
                                       "(ABAC `eval()` matcher)", pair, casbin_targets.get(n)))
    growth = hit_medians[10_000] / hit_medians[10]
    rows.append(Row("decision growth, hit, N=10 → N=10,000", fmt_time(hit_medians[10_000]),
                    fmt_time(hit_medians[10]), f"{growth:.2f}×", "< 2×", growth < 2,
                    "ours at N=10,000 (ours column) over ours at N=10 (peer column)"))
    docs, distinct, text = ours_documents(10_000), ours_documents(10_000, distinct=True), cedar_text(10_000)
    pair = alternate(lambda: per_call(lambda: PolicySet.compile(docs), 1),
                     lambda: per_call(lambda: cedarpy.PolicySet.from_str(text), 1))
    rows.append(Row("compile 10,000 policies: `PolicySet.compile` vs cedarpy `PolicySet.from_str`",
                    fmt_time(pair.ours), fmt_time(pair.peer), f"{pair.peer / pair.ours:,.1f}× faster",
                    "ours ≤ 100 ms", pair.ours <= 0.1, samples_note(pair, fmt_time)))
    pair = alternate(lambda: per_call(lambda: PolicySet.compile(distinct), 1),
                     lambda: per_call(lambda: cedarpy.PolicySet.from_str(text), 1))
    rows.append(Row("compile 10,000 policies, every condition distinct (worst case) vs cedarpy", fmt_time(pair.ours),
                    fmt_time(pair.peer), f"{pair.peer / pair.ours:,.1f}× faster", "reported", None,
                    samples_note(pair, fmt_time)))
    return rows
