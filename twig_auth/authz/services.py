"""Write workflows of authorization: grants, ABAC policies, separation-of-duties rules and time windows.

Each service is keyword-only, takes a :class:`RequestContext`, runs in one transaction and writes one audit event.
Errors:

- :class:`InvalidInput` maps each bad field to its messages. Policy documents keep the validator's paths
  (``policy.effect``, ``policy.conditions.2.time.hour``); time windows are reported under ``access_control``
  (``access_control.allowedHours.end``).
- :class:`PermissionDenied`: the actor may not do this (org admins hold :attr:`Permission.GRANTS_MANAGE` and
  :attr:`Permission.POLICIES_MANAGE`; operators — superusers and commands without an actor — may do everything).
- :class:`Conflict`: a duplicate grant, or a separation-of-duties rule (see :mod:`twig_auth.authz.sod`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime

from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.authz import registry, sod
from twig_auth.authz.matrix import Permission, has_permission
from twig_auth.authz.models import Grant, Policy, SodRule
from twig_auth.authz.policy_language import validate_policy
from twig_auth.authz.timewindow import FIELDS as WINDOW_FIELDS
from twig_auth.authz.timewindow import validate_access_control
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from twig_auth.orgs.models import Group, Membership, Organization
from twig_auth.orgs.roles import ROLE_RANK, Role
from twig_auth.orgs.services import actor_membership, is_operator

POLICY_FIELDS = ("name", "description", "document", "enabled")
NAME_MAX = 100
DESCRIPTION_MAX = 500
SOD_DESCRIPTION_MAX = 300

Errors = dict[str, list[str]]


# --- helpers ---------------------------------------------------------------------------------------------


def _require(org: Organization, context: RequestContext, permission: Permission, message: str) -> Membership | None:
    """Return the actor's membership (None for an operator); refuse unless their role holds ``permission``."""
    if is_operator(context):
        return None
    mine = actor_membership(org, context)
    if mine is None or not has_permission(mine.role, permission):
        raise PermissionDenied(message)
    return mine


def _actor_user(context: RequestContext) -> Any:
    actor = context.actor
    return actor if getattr(actor, "pk", None) else None


def _email(user: Any) -> str:
    if user is None:
        return ""
    return str(getattr(user, getattr(user, "EMAIL_FIELD", "email"), "") or user.pk)


def normalize_window(document: Any, errors: Errors, field: str = "access_control") -> dict[str, Any] | None:
    """Validate a time window and return what to store: the normalized ``{"accessControl": {...}}``, or None for
    no restriction (None, ``{}`` or an empty ``accessControl``). The bare body (``{"allowedDays": [...]}``) is
    accepted too. Problems go into ``errors`` under ``field`` (``access_control.allowedHours.end``)."""
    if document is None or document == {}:
        return None
    if isinstance(document, dict) and "accessControl" not in document and set(document) <= set(WINDOW_FIELDS):
        document = {"accessControl": document}
    try:
        clean = validate_access_control(document)
    except InvalidInput as exc:
        for path, messages in exc.errors.items():
            key = field if path in ("non_field_errors", "accessControl") else (
                f"{field}.{path.removeprefix('accessControl.')}")
            errors.setdefault(key, []).extend(messages)
        return None
    return clean if clean["accessControl"] else None


def _policies_changed(org_id: Any) -> None:
    def bump() -> None:
        from twig_auth.authz import store

        store.policies_changed(org_id)

    transaction.on_commit(bump)


# --- grants ----------------------------------------------------------------------------------------------


def _find_resource(org: Organization, resource_type: Any, resource_id: Any, action: Any, errors: Errors) -> Any:
    """Validate type, action and id; return the resource instance, "*" for a wildcard, or None."""
    problem = sod.type_problem(resource_type)
    if problem:
        errors["resource_type"] = [problem]
        return None
    rtype = registry.get(resource_type)
    assert rtype is not None
    problem = sod.action_problem(resource_type, action)
    if problem:
        errors["action"] = [problem]
    rid = "" if resource_id is None else str(resource_id).strip()
    if not rid:
        errors["resource_id"] = [f'Give the id of one {resource_type.replace("_", " ")}, or "*" for all of them.']
        return None
    if rid == "*":
        return "*"
    try:
        obj = rtype.model.objects.filter(pk=rid, **{rtype.org_field: org}).first()
    except (ValueError, TypeError, ValidationError):
        obj = None
    if obj is None:
        errors["resource_id"] = [f'There is no {resource_type.replace("_", " ")} "{rid[:64]}" in this organization.']
    return obj


def _may_manage(mine: Membership, resource_type: str, obj: Any, action: str, context: RequestContext) -> bool:
    """A member who manages one resource (holds its ``manage`` action) may grant what ``manage`` includes on it."""
    rtype = registry.get(resource_type)
    if rtype is None or obj in (None, "*") or "manage" not in rtype.actions or not rtype.grants("manage", action):
        return False
    from twig_auth.authz.decisions import authorize

    return authorize(mine, "manage", obj, context=context).allowed


def _expiry(value: Any, errors: Errors) -> dt.datetime | None:
    if value is None or value == "":
        return None
    when = parse_datetime(value) if isinstance(value, str) else value
    if not isinstance(when, dt.datetime):
        errors["expires_at"] = ["Must be a date and time, such as 2030-01-31T17:00:00Z."]
    elif when.tzinfo is None:
        errors["expires_at"] = ["Include a time zone, such as 2030-01-31T17:00:00Z."]
    elif when <= clock.now():
        errors["expires_at"] = ["Must be in the future."]
    else:
        return when
    return None


def _grant_details(grant: Grant) -> dict[str, Any]:
    details: dict[str, Any] = {"grant": grant.pk, "resource": grant.resource, "action": grant.action}
    if grant.group_id:
        details["group"] = grant.group.name
    else:
        details["member"] = _email(grant.user)
    details["expires_at"] = grant.expires_at.isoformat() if grant.expires_at else None
    details["access_control"] = grant.access_control
    return details


@transaction.atomic
def grant_permission(*, org: Organization, resource_type: str, resource_id: str, action: str, user: Any = None,
                     group: Group | None = None, expires_at: dt.datetime | str | None = None,
                     access_control: dict[str, Any] | None = None, context: RequestContext) -> Grant:
    """Grant ``action`` on one resource (``resource_id``) or on every resource of the type (``"*"``) to a member
    of ``org`` or to one of its groups. Org admins may grant anything; a member who manages a resource may grant
    on it what ``manage`` includes. Audited as ``PERMISSION_GRANTED``."""
    mine = None if is_operator(context) else actor_membership(org, context)
    if not is_operator(context) and mine is None:
        raise PermissionDenied("You are not a member of this organization.")
    admin = mine is None or has_permission(mine.role, Permission.GRANTS_MANAGE)
    errors: Errors = {}
    obj = _find_resource(org, resource_type, resource_id, action, errors)
    if not admin and (errors or not _may_manage(mine, resource_type, obj, action, context)):  # type: ignore[arg-type]
        raise PermissionDenied("Only admins, or a member who manages this resource, can grant permissions on it.")
    if (user is None) == (group is None):
        errors["grantee"] = ["Grant to one member or to one group." if user is None else
                             "Grant to a member or to a group, not both."]
    elif user is not None and not Membership.objects.filter(org=org, user=user).exists():
        errors["user"] = [f"{_email(user)} is not a member of this organization."]
    elif group is not None and group.org_id != org.pk:
        errors["group"] = [f'The group "{group.name}" belongs to another organization.']
    when = _expiry(expires_at, errors)
    window = normalize_window(access_control, errors)
    if errors:
        raise InvalidInput(errors)
    Organization.objects.select_for_update().filter(pk=org.pk).first()  # one grant write per org at a time
    rid = "*" if obj == "*" else str(obj.pk)
    same = Grant.objects.live(clock.now()).filter(org=org, resource_type=resource_type, resource_id=rid,
                                                  action=action, user=user, group=group).first()
    if same is not None:
        who = f'the group "{group.name}"' if group is not None else _email(user)
        raise Conflict(f'{who} already holds "{action}" on {resource_type}:{rid} (grant {same.pk}); revoke it first '
                       "to change its expiry or time window.", grant=same.pk)
    sod.check_grant(org=org, resource_type=resource_type, action=action, user=user, group=group)
    grant = Grant.objects.create(org=org, resource_type=resource_type, resource_id=rid, action=action, user=user,
                                 group=group, expires_at=when, access_control=window,
                                 created_by=_actor_user(context), created_at=clock.now())
    record(Event.PERMISSION_GRANTED, context=context, org=org, target=grant, details=_grant_details(grant))
    return grant


@transaction.atomic
def revoke_permission(*, grant: Grant, context: RequestContext) -> None:
    """Delete a grant. Audited as ``PERMISSION_REVOKED``."""
    locked = (Grant.objects.select_for_update().filter(pk=grant.pk).first())
    if locked is None:
        raise NotFound("That grant no longer exists.")
    grant = Grant.objects.select_related("org", "user", "group").get(pk=locked.pk)
    if not is_operator(context):
        mine = actor_membership(grant.org, context)
        if mine is None:
            raise PermissionDenied("You are not a member of this organization.")
        if not has_permission(mine.role, Permission.GRANTS_MANAGE):
            errors: Errors = {}
            obj = _find_resource(grant.org, grant.resource_type, grant.resource_id, grant.action, errors)
            if errors or not _may_manage(mine, grant.resource_type, obj, grant.action, context):
                raise PermissionDenied("Only admins, or a member who manages this resource, can revoke its grants.")
    record(Event.PERMISSION_REVOKED, context=context, org=grant.org, target=grant, details=_grant_details(grant))
    grant.delete()


# --- policies --------------------------------------------------------------------------------------------


def _require_policies(org: Organization, context: RequestContext, *, enterprise: bool = True) -> None:
    _require(org, context, Permission.POLICIES_MANAGE, "Only admins can manage policies.")
    if enterprise and not org.is_enterprise:
        raise PermissionDenied("ABAC policies require the enterprise plan.", fields=["policies"])


def _check_policy_fields(org: Organization, fields: dict[str, Any], errors: Errors,
                         exclude: Any = None) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in fields:
        name = fields["name"].strip() if isinstance(fields["name"], str) else ""
        if not name:
            errors["name"] = ["This field is required."]
        elif len(name) > NAME_MAX:
            errors["name"] = [f"At most {NAME_MAX} characters."]
        elif Policy.objects.filter(org=org, name__iexact=name).exclude(pk=exclude).exists():
            errors["name"] = [f'A policy named "{name}" already exists in this organization.']
        clean["name"] = name
    if "description" in fields:
        text = fields["description"]
        if text is None:
            text = ""
        if not isinstance(text, str) or len(text) > DESCRIPTION_MAX:
            errors["description"] = [f"Must be text of at most {DESCRIPTION_MAX} characters."]
        clean["description"] = text
    if "enabled" in fields:
        if not isinstance(fields["enabled"], bool):
            errors["enabled"] = ["Must be true or false."]
        clean["enabled"] = fields["enabled"]
    if "document" in fields:
        try:
            clean["document"] = validate_policy(fields["document"], resource_types=registry.actions_by_type())
        except InvalidInput as exc:
            for path, messages in exc.errors.items():
                errors.setdefault("document" if path == "non_field_errors" else path, []).extend(messages)
    return clean


def _policy_details(policy: Policy) -> dict[str, Any]:
    body = (policy.document or {}).get("policy", {})
    return {"policy": policy.pk, "name": policy.name, "effect": body.get("effect"),
            "resource": body.get("resource"), "action": body.get("action"), "enabled": policy.enabled}


@transaction.atomic
def create_policy(*, org: Organization, name: str, document: Any, description: str = "", enabled: bool = True,
                  context: RequestContext) -> Policy:
    """Store a validated ABAC policy (enterprise orgs). Audited as ``POLICY_CREATED``; every worker uses it once
    the transaction commits."""
    _require_policies(org, context)
    errors: Errors = {}
    clean = _check_policy_fields(org, {"name": name, "description": description, "enabled": enabled,
                                       "document": document}, errors)
    if errors:
        raise InvalidInput(errors)
    now = clock.now()
    policy = Policy.objects.create(org=org, created_at=now, updated_at=now, updated_by=_actor_user(context), **clean)
    record(Event.POLICY_CREATED, context=context, org=org, target=policy, details=_policy_details(policy))
    _policies_changed(org.pk)
    return policy


@transaction.atomic
def update_policy(*, policy: Policy, context: RequestContext, **fields: Any) -> Policy:
    """Change some of ``name``, ``description``, ``document`` and ``enabled``. Audited as ``POLICY_UPDATED`` with
    the changed fields (nothing is written when nothing changes)."""
    policy = Policy.objects.select_for_update(of=("self",)).select_related("org").get(pk=policy.pk)
    org = policy.org
    _require_policies(org, context)
    errors: Errors = {f: [f"Unknown field; a policy has {', '.join(POLICY_FIELDS)}."]
                      for f in fields if f not in POLICY_FIELDS}
    clean = _check_policy_fields(org, {k: v for k, v in fields.items() if k in POLICY_FIELDS}, errors,
                                 exclude=policy.pk)
    if errors:
        raise InvalidInput(errors)
    changed = sorted(k for k, v in clean.items() if getattr(policy, k) != v)
    if not changed:
        return policy
    for key in changed:
        setattr(policy, key, clean[key])
    policy.updated_at = clock.now()
    policy.updated_by = _actor_user(context)
    policy.save(update_fields=[*changed, "updated_at", "updated_by"])
    record(Event.POLICY_UPDATED, context=context, org=org, target=policy,
           details={**_policy_details(policy), "changed": changed})
    _policies_changed(org.pk)
    return policy


@transaction.atomic
def delete_policy(*, policy: Policy, context: RequestContext) -> None:
    """Delete a policy (allowed after a downgrade from enterprise too). Audited as ``POLICY_DELETED``."""
    policy = Policy.objects.select_for_update(of=("self",)).select_related("org").get(pk=policy.pk)
    _require_policies(policy.org, context, enterprise=False)
    record(Event.POLICY_DELETED, context=context, org=policy.org, target=policy, details=_policy_details(policy))
    policy.delete()
    _policies_changed(policy.org_id)


# --- separation of duties --------------------------------------------------------------------------------


@transaction.atomic
def add_sod_rule(*, org: Organization, first: str, second: str, description: str = "",
                 context: RequestContext) -> SodRule:
    """Forbid any member to hold both ``first`` and ``second`` (``"type:action"`` each). Audited as
    ``SOD_RULE_ADDED``.

    Members who already hold both are not changed: the returned rule's ``violators`` lists their emails (also in
    the audit event), for an admin to fix by hand; from now on no grant, role change or group join may add one.
    """
    _require(org, context, Permission.POLICIES_MANAGE, "Only admins can manage separation-of-duties rules.")
    errors: Errors = {}
    for field, value in (("first", first), ("second", second)):
        problem = sod.permission_problem(value)
        if problem:
            errors[field] = [problem]
    if not errors:
        if first == second:
            errors["second"] = ["Must differ from the first permission."]
        elif second in sod.close([first]) or first in sod.close([second]):
            high, low = (first, second) if second in sod.close([first]) else (second, first)
            errors["second"] = [f'"{high}" includes "{low}", so no member could hold "{high}" at all; pick two '
                                "permissions where neither includes the other."]
    if not isinstance(description, str) or len(description) > SOD_DESCRIPTION_MAX:
        errors["description"] = [f"Must be text of at most {SOD_DESCRIPTION_MAX} characters."]
    if errors:
        raise InvalidInput(errors)
    existing = SodRule.objects.filter(org=org, first__in=[first, second], second__in=[first, second]).first()
    if existing is not None:
        raise Conflict(f'The rule "{existing.first} ✕ {existing.second}" already exists.', rule=existing.pk)
    rule = SodRule.objects.create(org=org, first=first, second=second, description=description,
                                  created_at=clock.now())
    found = sod.violations(org, [rule])
    rule.violators = [sod.email_of(m) for m in found[0][1]] if found else []  # type: ignore[attr-defined]
    record(Event.SOD_RULE_ADDED, context=context, org=org, target=rule,
           details={"first": first, "second": second, "description": description,
                    "violators": rule.violators})  # type: ignore[attr-defined]
    return rule


@transaction.atomic
def remove_sod_rule(*, rule: SodRule, context: RequestContext) -> None:
    """Delete a rule. Audited as ``SOD_RULE_REMOVED``."""
    rule = SodRule.objects.select_for_update(of=("self",)).select_related("org").get(pk=rule.pk)
    _require(rule.org, context, Permission.POLICIES_MANAGE, "Only admins can manage separation-of-duties rules.")
    record(Event.SOD_RULE_REMOVED, context=context, org=rule.org, target=rule,
           details={"first": rule.first, "second": rule.second, "description": rule.description})
    rule.delete()


# --- time windows ----------------------------------------------------------------------------------------


@transaction.atomic
def set_access_control(*, target: Membership | Group, document: dict[str, Any] | None,
                       context: RequestContext) -> None:
    """Set (or clear, with None or ``{}``) the time window of a member or a group. Audited as
    ``ACCESS_WINDOW_CHANGED`` with the old and new window. Admins set them, never on a role above their own."""
    model = type(target)
    target = model.objects.select_for_update(of=("self",)).select_related("org").get(pk=target.pk)
    org = target.org
    if isinstance(target, Membership):
        mine = _require(org, context, Permission.MEMBERS_MANAGE, "Only admins can set a member's time window.")
        if mine is not None and (ROLE_RANK[target.role] > ROLE_RANK[mine.role]
                                 or (target.role == Role.SUPER_ADMIN and mine.role != Role.SUPER_ADMIN)):
            raise PermissionDenied("You cannot restrict a role above your own.")
        who: dict[str, Any] = {"member": _email(target.user)}
    else:
        _require(org, context, Permission.GROUPS_MANAGE, "Only admins can set a group's time window.")
        who = {"group": target.name}
    errors: Errors = {}
    window = normalize_window(document, errors)
    if errors:
        raise InvalidInput(errors)
    old = target.access_control
    if old == window:
        return
    target.access_control = window
    target.save(update_fields=["access_control"])
    record(Event.ACCESS_WINDOW_CHANGED, context=context, org=org, target=target,
           details={**who, "from": old, "to": window})
