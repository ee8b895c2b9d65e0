"""The one decision API: may this member do this action on this resource, and why.

Order of a decision (the first step that decides wins; deny wins over every allow):

1. ``membership``: the actor must be a member of the org that owns the resource;
2. ``time_window``: outside the member's window (``Membership.access_control``) nothing is allowed;
3. ``sod``: dynamic separation of duties: whoever created or last changed a resource may not ``deploy`` it;
4. ``policy``: (enterprise orgs) a deny policy whose conditions all hold;
5. ``role``: the org role holds the action (or one implying it) on every resource of the type (the role
   matrix); for groups, the member's role in that group;
6. ``owner``: the creator holds :data:`~twig_auth.authz.matrix.OWNER_ACTIONS` on what they created;
7. ``grant``: a live grant to the member or one of their groups (not expired, inside its window and its
   group's window) whose action implies the wanted one, on this resource or on ``*``;
8. ``policy``: (enterprise orgs) an allow policy whose conditions all hold;
9. ``default``: nothing allowed it: deny.

Grant-only actions (:data:`GRANT_ONLY_ACTIONS`, e.g. ``deploy``) never come from a role or ownership, nor from
a policy whose action is the wildcard ``*``: only a grant or a policy naming the action allows them.

:func:`authorized` narrows a queryset with the same rules and agrees with :func:`authorize` on every object:
in SQL when the rules do not depend on the row beyond its id, owner and modifier; else (policies reading
``resource.*`` or naming single resources) it evaluates every candidate row in Python (one query) and
filters by primary key. Either way the number of queries does not depend on the number of rows.

:func:`explain` is :func:`authorize` that keeps going after the deciding step (later steps are marked
"not reached") and also names expired grants. :func:`require` audits a denial as ``AUTHORIZATION_DENIED``.

Cost: a member's facts (org, window, attributes, groups), grants and the org's compiled policies are loaded
once per request and kept on the actor object (:mod:`twig_auth.authz.members`). A request's first decision
costs one cache round trip (the policy version and, when not already loaded, snapshots of the member and org
rows) plus the member's grants when no role or ownership allowed first (one query), plus the member's groups
and email when a policy covers the request; later decisions in the request cost nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from weakref import WeakKeyDictionary

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.authz import matrix, registry, store
from twig_auth.authz.attributes import Attributes
from twig_auth.authz.engine import Decision, PolicySet
from twig_auth.authz.grants import grant_refusal, grants_for
from twig_auth.authz.members import cached_grants, member_facts
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, NotFound, PermissionDenied

GRANT_ONLY_ACTIONS = frozenset({"deploy"})
DYNAMIC_SOD_ACTIONS = frozenset({"deploy"})


@dataclass(frozen=True)
class Step:
    """One line of an explanation."""

    kind: str  # "membership" | "time_window" | "sod" | "policy" | "role" | "owner" | "grant" | "default"
    outcome: str  # "allow" | "deny" | "skip"
    detail: str


@dataclass(frozen=True)
class AuthzDecision:
    allowed: bool
    decided_by: str
    reason: str
    steps: tuple[Step, ...]
    policy_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "decidedBy": self.decided_by, "reason": self.reason,
                "steps": [{"kind": s.kind, "outcome": s.outcome, "detail": s.detail} for s in self.steps],
                "policyIds": list(self.policy_ids)}


# --- the resource ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Res:
    id: str
    key: str
    org_id: Any
    owner: str | None = None
    modifier: str | None = None
    tags: Any = None


def _attname(model: Any, name: str | None) -> str | None:
    return model._meta.get_field(name).attname if name else None


def _res_of(obj: Any, rtype: registry.ResourceType) -> _Res:
    model = type(obj)
    owner, modifier = (getattr(obj, a) if a else None for a in (_attname(model, rtype.owner_field),
                                                               _attname(model, rtype.modifier_field)))
    return _Res(str(obj.pk), f"{rtype.name}:{obj.pk}", getattr(obj, _attname(model, rtype.org_field)),
                None if owner is None else str(owner), None if modifier is None else str(modifier),
                getattr(obj, rtype.tags_field) if rtype.tags_field else None)


def _type_of(model: Any) -> registry.ResourceType:
    rtype = registry.for_model(model)
    if rtype is None:
        raise ValueError(f"{model._meta.label} is not a registered resource type (twig_auth.authz.registry)")
    return rtype


def resource_key(obj: Any) -> str:
    """``"agent:agt_…"``: the resource's type and id as grants, policies and audit events name it."""
    return f"{_type_of(obj).name}:{obj.pk}"


def resolve_resource(org: Any, key: str) -> Any:
    """Return the resource ``"type:id"`` of ``org``; raise :class:`NotFound` when there is none."""
    type_name, _, rid = str(key).partition(":")
    rtype = registry.get(type_name)
    if rtype is None or not rid:
        raise NotFound(f'No resource "{str(key)[:80]}": write it as type:id, e.g. "agent:agt_…".')
    try:
        obj = rtype.model._default_manager.filter(**{rtype.org_field: org, "pk": rid}).first()
    except (ValueError, TypeError, ValidationError):
        obj = None
    if obj is None:
        raise NotFound(f"No {rtype.name} {rid[:64]!r} in this organization.")
    return obj


# --- one decision's fixed part: everything that does not depend on the resource ----------------------------

_uniform_cache: WeakKeyDictionary[PolicySet, dict[tuple[str, str], bool]] = WeakKeyDictionary()


def _uniform(pset: PolicySet, rtype: str, action: str) -> bool:
    """Do the policies give every resource of the type the same answer (no single-resource policy, no
    condition on ``resource.*`` other than its type)?"""
    memo = _uniform_cache.setdefault(pset, {})
    key = (rtype, action)
    if key not in memo:
        memo[key] = not any(
            p.resource_type in (rtype, "*") and p.action in (action, "*")
            and (p.resource_id != "*" or any(c.attribute.startswith("resource.") and c.attribute != "resource.type"
                                             for c in p.conditions))
            for p in pset)
    return memo[key]


class _Plan:
    def __init__(self, actor: Any, rtype: registry.ResourceType, action: str, at: dt.datetime,
                 context: RequestContext | None, *, full: bool = False) -> None:
        if action not in rtype.actions:
            raise InvalidInput({"action": [f'Unknown action "{str(action)[:40]}" on {rtype.name}; the actions are '
                                           f'{", ".join(rtype.actions)}.']})
        self.rtype, self.action, self.at, self.context, self.full = rtype, action, at, context, full
        self.facts = f = member_facts(actor)
        self.holders = rtype.holders_of(action)
        self.grant_only = action in GRANT_ONLY_ACTIONS
        self.sod = action in DYNAMIC_SOD_ACTIONS and bool(rtype.owner_field or rtype.modifier_field)
        self.window_refusal = f.window.refusal(at) if f is not None and f.window is not None else None
        held = () if f is None or self.grant_only else matrix.role_actions(f.role, rtype.name) & self.holders
        self.role_held = min(held) if held else None
        owned = matrix.OWNER_ACTIONS.get(rtype.name, frozenset()) & self.holders
        self.owner_held = min(owned) if owned and rtype.owner_field and not self.grant_only else None
        self.policies = f.policies if f is not None else None

    @cached_property
    def group_roles_held(self) -> dict[str, str]:
        """For groups: ``{group id: the member's role in it}`` where that role allows the action."""
        if self.rtype.name != "group" or self.grant_only or self.facts is None:
            return {}
        return {str(gid): role for gid, (_, role) in self.facts.group_roles.items() if role in self.holders}

    @cached_property
    def grants(self) -> tuple[list[Any], dict[str, list[Any]], list[tuple[Any, str]]]:
        """(wildcard grants that apply, ``{resource id: grants that apply}``, [(grant, why it does not)])."""
        assert self.facts is not None
        wild: list[Any] = []
        by_id: dict[str, list[Any]] = {}
        refused: list[tuple[Any, str]] = []
        to_python = self.rtype.model._meta.pk.to_python
        if self.full:  # explain also names the grants that expired
            loaded = grants_for(self.facts.actor, self.rtype.name, now=self.at, include_expired=True)
        else:
            loaded = cached_grants(self.facts.actor, self.at)
        for g in loaded:
            if g.resource_type != self.rtype.name or g.action not in self.holders:
                continue
            why = grant_refusal(g, self.at, self.facts.timezone)
            if why:
                refused.append((g, why))
            elif g.resource_id == "*":
                wild.append(g)
            else:
                try:
                    rid = str(to_python(g.resource_id))
                except (ValidationError, ValueError, TypeError):
                    continue
                by_id.setdefault(rid, []).append(g)
        return wild, by_id, refused

    def attributes(self, res: _Res) -> Attributes:
        assert self.facts is not None
        c = self.context
        return Attributes(user=self.facts.user_attributes, resource_type=self.rtype.name, resource_id=res.id,
                          resource={"owner": res.owner, "tags": res.tags}, ip=c.ip if c else None,
                          mfa=c.mfa_used if c else None, now=self.at, timezone=self.facts.timezone)

    def policy_allows(self, decision: Decision) -> bool:
        if not decision.allowed:
            return False
        if not self.grant_only:
            return True
        assert self.policies is not None
        return any(self.policies.get(pid).action == self.action for pid in decision.policy_ids)  # type: ignore[union-attr]


def _who(grant: Any) -> str:
    return f'group "{grant.group.name}"' if grant.group_id else "the member"


def _policy_detail(plan: _Plan, decision: Decision, effect: str, key: str, full: bool) -> str:
    """Say which ``effect`` policies held (by name and id), or, when ``full``, why none did."""
    candidates = decision.denies if effect == "deny" else decision.allows
    if not candidates:
        return f'no {effect} policy applies to "{plan.action}" on {key}'
    if not full and decision.effect != effect:
        return f"no {effect} policy holds"
    assert plan.facts is not None
    names = store.policy_names(plan.facts.org_id)
    traces = [t for t in decision.traces() if t.effect == effect]
    held = [t for t in traces if t.held] if decision.effect == effect else []
    label = {t.policy_id: f'policy "{names.get(t.policy_id, t.policy_id)}" ({t.policy_id})' for t in traces}
    if held:
        verb = "denies" if effect == "deny" else "allows"
        return "; ".join(f'{label[t.policy_id]} {verb} "{plan.action}" on {key}: {t.detail}' for t in held)
    shown = "; ".join(f"{label[t.policy_id]} does not hold: {t.detail}" for t in traces[:3])
    return f"no {effect} policy holds ({shown}{'; …' if len(traces) > 3 else ''})"


def _steps(plan: _Plan, res: _Res, full: bool) -> Iterator[tuple[Step, tuple[str, ...]]]:
    """Yield every step of the decision on ``res`` in order, each with the policy ids it rests on; ``full``
    spells out why steps that did not decide did not."""
    f, action, rtype, key = plan.facts, plan.action, plan.rtype, res.key
    if f is None or str(res.org_id) != str(f.org_id):
        yield Step("membership", "deny", f"the actor is not a member of the organization that owns {key}"), ()
        return
    yield Step("membership", "skip", f'member of "{f.org.name}" as {f.role}'), ()
    if plan.window_refusal:
        yield Step("time_window", "deny", f"the member's access window is closed: {plan.window_refusal}"), ()
    elif f.window is not None:
        yield Step("time_window", "skip", "inside the member's access window"), ()
    if plan.sod:
        if f.uid in (res.owner, res.modifier):
            did = "created" if f.uid == res.owner else "last changed"
            yield Step("sod", "deny", f"separation of duties: the member {did} {key}, so may not {action} it"), ()
        else:
            yield Step("sod", "skip", f"the member neither created nor last changed {key}"), ()
    decision = None
    policies = plan.policies
    if policies is not None and not policies.candidates(rtype.name, res.id, action):
        yield Step("policy", "skip", f'no deny policy applies to "{action}" on {key}'), ()
    elif policies is not None:  # attributes (and the member's groups and email) only when a policy may read them
        decision = policies.decide(plan.attributes(res), action)
        if decision.denied:
            yield Step("policy", "deny", _policy_detail(plan, decision, "deny", key, True)), decision.policy_ids
        else:
            yield Step("policy", "skip", _policy_detail(plan, decision, "deny", key, full)), ()
    if plan.role_held:
        held = plan.role_held
        implied = "" if held == action else f', which allows "{action}"'
        yield Step("role", "allow", f'role "{f.role}" holds "{held}" on every {rtype.name} of the '
                                    f"organization{implied}"), ()
    else:
        why = "is granted explicitly only" if plan.grant_only else "is not in the role's actions"
        yield Step("role", "skip", f'role "{f.role}": "{action}" on {rtype.name} {why}'), ()
    group_role = plan.group_roles_held.get(res.id)
    if group_role:
        yield Step("role", "allow", f'the member is "{group_role}" of {key}, which allows "{action}"'), ()
    if plan.owner_held:
        if res.owner is not None and res.owner == f.uid:
            yield Step("owner", "allow", f'the member created {key}; creators hold "{plan.owner_held}" on it'), ()
        else:
            yield Step("owner", "skip", f"the member did not create {key}"), ()
    wild, by_id, refused = plan.grants
    applying = by_id.get(res.id, []) + wild
    if applying:
        g = applying[0]
        yield Step("grant", "allow", f'{_who(g)} holds "{g.action}" on {g.resource} (grant {g.id})'), ()
    else:
        mine = [(g, why) for g, why in refused if g.resource_id in ("*", res.id)]
        detail = "; ".join(f'grant {g.id} ("{g.action}" on {g.resource} to {_who(g)}) does not apply: {why}'
                           for g, why in mine[:3]) or f'no grant to the member or their groups allows "{action}" ' \
                                                      f"on {key}"
        yield Step("grant", "skip", detail), ()
    if decision is not None and not decision.denied:
        if plan.policy_allows(decision):
            yield Step("policy", "allow", _policy_detail(plan, decision, "allow", key, True)), decision.policy_ids
        elif decision.allowed:
            yield Step("policy", "skip", f'only a policy naming "{action}" may allow it, not one for every action: '
                                         f'{_policy_detail(plan, decision, "allow", key, True)}'), ()
        else:
            yield Step("policy", "skip", _policy_detail(plan, decision, "allow", key, full)), ()
    elif policies is not None:
        yield Step("policy", "skip", f'no allow policy applies to "{action}" on {key}'), ()
    yield Step("default", "deny", f'no role, ownership, grant or policy allows "{action}" on {key}'), ()


def _evaluate(plan: _Plan, res: _Res, *, full: bool = False) -> AuthzDecision:
    steps: list[Step] = []
    decided: Step | None = None
    ids: tuple[str, ...] = ()
    for step, policy_ids in _steps(plan, res, full):
        if decided is None:
            steps.append(step)
            if step.outcome != "skip":
                decided, ids = step, policy_ids
                if not full:
                    break
        elif step.kind != "default":
            steps.append(Step(step.kind, "skip", f"(not reached) {step.detail}"))
    assert decided is not None
    reason = decided.detail[:1].upper() + decided.detail[1:] + "."
    return AuthzDecision(decided.outcome == "allow", decided.kind, reason, tuple(steps), ids)


def _instant(at: dt.datetime | None) -> dt.datetime:
    at = at or clock.now()
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    return at


# --- the public API -------------------------------------------------------------------------------------

def authorize(actor: Any, action: str, resource: Any, *, context: RequestContext | None = None,
              at: dt.datetime | None = None) -> AuthzDecision:
    """Decide whether ``actor`` (a membership) may do ``action`` on ``resource`` (a registered model instance)
    now, or at ``at``. ``context`` supplies ``request.ip`` and ``request.mfa`` to policies."""
    rtype = _type_of(resource)
    return _evaluate(_Plan(actor, rtype, action, _instant(at), context), _res_of(resource, rtype))


def explain(actor: Any, action: str, resource: Any, *, at: dt.datetime | None = None,
            context: RequestContext | None = None) -> AuthzDecision:
    """The same decision as :func:`authorize`, with the steps after the deciding one listed as "not reached"."""
    rtype = _type_of(resource)
    plan = _Plan(actor, rtype, action, _instant(at), context, full=True)
    return _evaluate(plan, _res_of(resource, rtype), full=True)


def authorized(actor: Any, action: str, queryset: QuerySet[Any], *, context: RequestContext | None = None,
               at: dt.datetime | None = None) -> QuerySet[Any]:
    """Return ``queryset`` narrowed to the rows ``actor`` may do ``action`` on; agrees with :func:`authorize`."""
    model = queryset.model
    rtype = _type_of(model)
    plan = _Plan(actor, rtype, action, _instant(at), context)
    f = plan.facts
    if f is None or plan.window_refusal:
        return queryset.none()
    qs = queryset.filter(**{rtype.org_field: f.org_id})
    everything = bool(plan.role_held)
    policies = plan.policies
    if policies is not None:
        if not _uniform(policies, rtype.name, action):
            return _in_python(plan, qs)
        if policies.candidates(rtype.name, "*", action):  # the same answer for every row: decide once
            decision = policies.decide(plan.attributes(_Res("*", f"{rtype.name}:*", f.org_id)), action)
            if decision.denied:
                return qs.none()
            everything = everything or plan.policy_allows(decision)
    if plan.sod:
        for name in (rtype.owner_field, rtype.modifier_field):
            if name:
                qs = qs.exclude(**{name: f.user_id})
    if everything:
        return qs
    wild, by_id, _ = plan.grants
    if wild:
        return qs
    cond = Q(pk__in=list(by_id) + list(plan.group_roles_held))
    if plan.owner_held:
        cond |= Q(**{rtype.owner_field: f.user_id})  # type: ignore[dict-item]
    return qs.filter(cond)


def _in_python(plan: _Plan, qs: QuerySet[Any]) -> QuerySet[Any]:
    """Decide every candidate row in Python (one query) and keep the allowed ones by primary key."""
    rtype, model = plan.rtype, plan.rtype.model
    names = [model._meta.pk.attname, _attname(model, rtype.owner_field), _attname(model, rtype.modifier_field),
             rtype.tags_field]
    fields = [n for n in names if n]
    keep = []
    org_id = plan.facts.org_id if plan.facts is not None else None
    for row in qs.values_list(*fields):
        values = dict(zip(fields, row, strict=True))
        pk = values[names[0]]
        owner, modifier = (values.get(n) if n else None for n in names[1:3])
        res = _Res(str(pk), f"{rtype.name}:{pk}", org_id,  # qs is filtered on the org
                   None if owner is None else str(owner), None if modifier is None else str(modifier),
                   values.get(names[3]) if names[3] else None)
        if _evaluate(plan, res).allowed:
            keep.append(pk)
    return qs.filter(pk__in=keep)


def has_permission(actor: Any, permission: matrix.Permission | str) -> bool:
    """May the member do ``permission`` in its org (the role matrix)?"""
    role = getattr(actor, "role", None)
    return role is not None and matrix.has_permission(role, permission)


def require(actor: Any, action: str, resource: Any, *, context: RequestContext) -> AuthzDecision:
    """Return the decision when ``actor`` may do ``action`` on ``resource``; else audit AUTHORIZATION_DENIED
    (action, resource, reason, decidedBy) and raise :class:`PermissionDenied` with the reason."""
    rtype = _type_of(resource)
    plan = _Plan(actor, rtype, action, _instant(None), context)
    res = _res_of(resource, rtype)
    decision = _evaluate(plan, res)
    if decision.allowed:
        return decision
    org = plan.facts.org if plan.facts is not None else None
    record(Event.AUTHORIZATION_DENIED, context=context, org=org, target=resource,
           details={"action": action, "resource": res.key, "reason": decision.reason,
                    "decidedBy": decision.decided_by})
    exc = PermissionDenied(decision.reason)
    exc.decision = decision  # type: ignore[attr-defined]
    raise exc


__all__ = ["DYNAMIC_SOD_ACTIONS", "GRANT_ONLY_ACTIONS", "AuthzDecision", "Step", "authorize", "authorized",
           "explain", "has_permission", "require", "resolve_resource", "resource_key"]
