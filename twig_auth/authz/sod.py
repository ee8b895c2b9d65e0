"""Static separation of duties: pairs of permissions (:class:`~twig_auth.authz.models.SodRule`) no member may hold
together.

A *permission* here is ``"type:action"`` (``"agent:edit"``). A member holds one when their role holds the action
on every resource of the type (:data:`~twig_auth.authz.matrix.ROLE_RESOURCE_ACTIONS`), or when a live grant gives
it to them or to one of their groups, on one resource or on all (``agent:*``): both count. Implications are
closed: holding ``agent:manage`` is holding ``agent:edit``, ``agent:use`` and ``agent:view`` too. Time windows do
not matter (a grant usable some of the time is held); the owner rule does not count (it depends on the resource).

The checks refuse only a change that *newly* breaks a rule, so a member who already breaks one (a rule added
later, see :func:`violations`) can still receive unrelated grants. Each raises :class:`Conflict` naming the rule,
both permissions and the members; ``exc.extra`` holds ``rule`` (its pk), ``permissions`` and ``members``.

The dynamic rule (the creator or last editor of an agent may not approve its deployment) is checked at decision
time by :mod:`twig_auth.authz.decisions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Q

from twig_auth.authz import matrix, registry
from twig_auth.authz.models import Grant, SodRule
from twig_auth.core import clock
from twig_auth.exceptions import Conflict
from twig_auth.orgs.models import Group, GroupMembership, Membership


def plural(rtype: str) -> str:
    """``"data_source"`` -> ``"data sources"``."""
    return rtype.replace("_", " ") + "s"


def one_of(choices: Sequence[str]) -> str:
    """``("a", "b", "c")`` -> ``"a, b or c"``."""
    items = list(choices)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def type_problem(rtype: Any) -> str | None:
    """Why ``rtype`` is not a registered resource type, or None."""
    if isinstance(rtype, str) and registry.get(rtype) is not None:
        return None
    known = sorted(registry.all_types())
    return f'there is no resource type "{str(rtype)[:40]}"; choose {one_of(known)}'


def action_problem(rtype: str, action: Any) -> str | None:
    """Why ``action`` is not an action of the (registered) type, or None."""
    rt = registry.get(rtype)
    if rt is None:
        return type_problem(rtype)
    if isinstance(action, str) and action in rt.actions:
        return None
    return f'{plural(rtype)} have no action "{str(action)[:40]}"; choose {one_of(rt.actions)}'


def permission_problem(value: Any) -> str | None:
    """Why ``value`` is not a ``"type:action"`` permission of the registry, or None."""
    if not isinstance(value, str) or value.count(":") != 1:
        return 'write a permission as "type:action", such as "agent:edit"'
    rtype, _, action = value.partition(":")
    return type_problem(rtype) or action_problem(rtype, action)


def close(permissions: Iterable[str]) -> set[str]:
    """Add every permission implied by one of ``permissions`` (unknown ones are kept as they are)."""
    out: set[str] = set()
    for perm in permissions:
        rtype, _, action = perm.partition(":")
        rt = registry.get(rtype)
        implied = rt.closure.get(action) if rt is not None else None
        if implied:
            out.update(f"{rtype}:{a}" for a in implied)
        else:
            out.add(perm)
    return out


def _role_held(role: str) -> set[str]:
    return {f"{t}:{a}" for t, actions in matrix.ROLE_RESOURCE_ACTIONS.get(role, {}).items() for a in actions}


def held_by(org_id: Any, memberships: Sequence[Membership], *, roles: dict[Any, str] | None = None,
            extra: dict[Any, Iterable[str]] | None = None) -> dict[Any, set[str]]:
    """The closed permissions of each membership (by pk), in three queries whatever their number.

    ``roles`` overrides the role of some memberships (a role change being checked); ``extra`` adds
    permissions to some (a grant or a group being checked).
    """
    roles, extra = roles or {}, extra or {}
    by_user = {m.user_id: m.pk for m in memberships}
    links = list(GroupMembership.objects.filter(membership__in=[m.pk for m in memberships])
                 .values_list("membership_id", "group_id"))
    groups_of: dict[Any, set[Any]] = {}
    for mid, gid in links:
        groups_of.setdefault(gid, set()).add(mid)
    raw: dict[Any, set[str]] = {m.pk: _role_held(roles.get(m.pk, m.role)) | set(extra.get(m.pk, ()))
                                for m in memberships}
    if by_user or groups_of:
        grants = (Grant.objects.live(clock.now()).filter(org_id=org_id)
                  .filter(Q(user_id__in=list(by_user)) | Q(group_id__in=list(groups_of)))
                  .values_list("user_id", "group_id", "resource_type", "action"))
        for user_id, group_id, rtype, action in grants:
            holders = {by_user[user_id]} if user_id in by_user else groups_of.get(group_id, set())
            for mid in holders:
                raw[mid].add(f"{rtype}:{action}")
    return {pk: close(perms) for pk, perms in raw.items()}


def held_permissions(membership: Membership, *, role: str | None = None, extra: Iterable[str] = ()) -> set[str]:
    """The ``"type:action"`` permissions ``membership`` holds on some resource, implications closed.

    ``role`` replaces the member's role and ``extra`` adds permissions: "what would they hold if …".
    """
    return held_by(membership.org_id, [membership], roles={membership.pk: role} if role else None,
                   extra={membership.pk: extra})[membership.pk]


def conflicts(org: Any, permissions: set[str]) -> list[SodRule]:
    """The rules of ``org`` that ``permissions`` (closed) breaks."""
    return [r for r in SodRule.objects.filter(org=org) if r.first in permissions and r.second in permissions]


def violations(org: Any, rules: Iterable[SodRule] | None = None) -> list[tuple[SodRule, list[Membership]]]:
    """Every rule of ``org`` (or of ``rules``) that current members break, with those members (by email)."""
    rules = list(SodRule.objects.filter(org=org) if rules is None else rules)
    if not rules:
        return []
    members = list(Membership.objects.filter(org=org).select_related("user").order_by("user__email"))
    held = held_by(getattr(org, "pk", org), members)
    out = []
    for rule in rules:
        breaking = [m for m in members if rule.first in held[m.pk] and rule.second in held[m.pk]]
        if breaking:
            out.append((rule, breaking))
    return out


def email_of(membership: Membership) -> str:
    user = membership.user
    return str(getattr(user, user.get_email_field_name(), "") or f"user {membership.user_id}")


def describe(rule: SodRule) -> str:
    text = f'"{rule.first} ✕ {rule.second}"'
    return f"{text} ({rule.description})" if rule.description else text


def _refuse_new(org_id: Any, rules: Sequence[SodRule], members: Sequence[Membership], *, how: str,
                roles: dict[Any, str] | None = None, extra: dict[Any, Iterable[str]] | None = None) -> None:
    """Raise :class:`Conflict` when the change (``roles``/``extra``) makes a member break a rule anew."""
    if not rules or not members:
        return
    before = held_by(org_id, members)
    after = held_by(org_id, members, roles=roles, extra=extra)
    for rule in rules:
        both = {rule.first, rule.second}
        breaking = [m for m in members if both <= after[m.pk] and not both <= before[m.pk]]
        if breaking:
            who = ", ".join(email_of(m) for m in breaking[:5]) + (f" and {len(breaking) - 5} more"
                                                                  if len(breaking) > 5 else "")
            verb = "would" if len(breaking) == 1 else "would each"
            raise Conflict(f'Separation of duties: {who} {verb} hold both "{rule.first}" and "{rule.second}" '
                           f"{how}, which the rule {describe(rule)} forbids.", rule=rule.pk,
                           permissions=[rule.first, rule.second], members=[email_of(m) for m in breaking])


def check_grant(*, org: Any, resource_type: str, action: str, user: Any = None, group: Group | None = None) -> None:
    """Refuse a grant of ``resource_type:action`` that would make the user (or a member of the group) break a
    rule."""
    rules = list(SodRule.objects.filter(org=org))
    if not rules:
        return
    if group is not None:
        members = list(Membership.objects.filter(group_memberships__group=group).select_related("user"))
        how = f'through group "{group.name}" with this grant'
    else:
        members = list(Membership.objects.filter(org=org, user=user).select_related("user"))
        how = "with this grant"
    perm = f"{resource_type}:{action}"
    _refuse_new(getattr(org, "pk", org), rules, members, how=how, extra={m.pk: [perm] for m in members})


def check_role_change(membership: Membership, new_role: str) -> None:
    """Refuse a role change that would make the member break a rule."""
    rules = list(SodRule.objects.filter(org_id=membership.org_id))
    _refuse_new(membership.org_id, rules, [membership], how=f"as {new_role.replace('_', ' ')}",
                roles={membership.pk: new_role})


def check_new_member(org: Any, role: str) -> None:
    """Refuse adding a member whose role alone breaks a rule (a new member holds no grant yet)."""
    rules = list(SodRule.objects.filter(org=org))
    held = close(_role_held(role))
    name = role.replace("_", " ")
    name = f"an {name}" if name[:1] in "aeiou" else f"a {name}"
    for rule in rules:
        if rule.first in held and rule.second in held:
            raise Conflict(f'Separation of duties: {name} holds both "{rule.first}" and "{rule.second}", which the '
                           f"rule {describe(rule)} forbids.", rule=rule.pk, permissions=[rule.first, rule.second],
                           members=[])


def check_group_join(membership: Membership, group: Group) -> None:
    """Refuse adding ``membership`` to ``group`` when the group's grants would make them break a rule."""
    rules = list(SodRule.objects.filter(org_id=membership.org_id))
    if not rules:
        return
    perms = [f"{t}:{a}" for t, a in Grant.objects.live(clock.now()).filter(group=group)
             .values_list("resource_type", "action")]
    if perms:
        _refuse_new(membership.org_id, rules, [membership], how=f'by joining group "{group.name}"',
                    extra={membership.pk: perms})
