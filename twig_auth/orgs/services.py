"""Write workflows for organizations, members and groups. Each is one transaction and one audit event."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from twig_auth import signals
from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict, InvalidInput, PermissionDenied
from twig_auth.orgs import policy
from twig_auth.orgs.models import Group, GroupMembership, Membership, Organization
from twig_auth.orgs.roles import GROUP_ROLE_RANK, ROLE_RANK, GroupRole, Role, role_at_least


def actor_membership(org: Organization, context: RequestContext) -> Membership | None:
    """Return the acting user's membership in ``org``, or None for an operator or outsider."""
    actor = context.actor
    if actor is None:
        return None
    return Membership.objects.active().filter(org=org, user=actor).first()  # a deactivated member acts as no one


def is_operator(context: RequestContext) -> bool:
    """An operator is a management command (no actor) or a Django superuser."""
    return context.actor is None or bool(getattr(context.actor, "is_superuser", False))


def _require_admin(org: Organization, context: RequestContext, *, assigning: str | None = None,
                   target: Membership | None = None) -> None:
    """Refuse unless the actor may manage members: admin or above, never above their own rank."""
    if is_operator(context):
        return
    mine = actor_membership(org, context)
    if mine is None or not mine.has_role(Role.ADMIN):
        raise PermissionDenied("Only admins can manage members.")
    for role in filter(None, [assigning, target.role if target else None]):
        if ROLE_RANK[role] > ROLE_RANK[mine.role]:
            raise PermissionDenied("You cannot manage a role above your own.")
        if role == Role.SUPER_ADMIN and mine.role != Role.SUPER_ADMIN:
            raise PermissionDenied("Only a super admin can manage super admins.")


def _check_role(role: str) -> None:
    if role not in ROLE_RANK:
        raise InvalidInput({"role": [f"Choose one of {', '.join(Role.values)}."]})


def _keep_a_super_admin(membership: Membership) -> None:
    if membership.role != Role.SUPER_ADMIN:
        return
    others = (Membership.objects.select_for_update().active().filter(org=membership.org_id, role=Role.SUPER_ADMIN)
              .exclude(pk=membership.pk))
    if not others.exists():
        raise Conflict("An organization needs at least one super admin who is not deactivated.")


@transaction.atomic
def create_organization(*, slug: str, name: str, plan: str | None = None, owner: Any = None,
                        context: RequestContext | None = None) -> Organization:
    """Create an org; ``owner`` (if given) becomes its first super admin."""
    from twig_auth.conf import app_settings

    context = context or RequestContext.system()
    org = Organization(slug=slug, name=name, plan=plan or app_settings.DEFAULT_PLAN)
    _full_clean(org)
    org.save()
    record(Event.ORG_CREATED, context=context, org=org, target=org, details={"plan": org.plan})
    if owner is not None:
        _create_membership(org, owner, Role.SUPER_ADMIN, context)
    return org


def _full_clean(obj: Any, exclude: list[str] | None = None) -> None:
    from django.core.exceptions import ValidationError

    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise InvalidInput({k: [str(m) for m in v] for k, v in exc.message_dict.items()}) from exc


def _create_membership(org: Organization, user: Any, role: str, context: RequestContext) -> Membership:
    try:
        with transaction.atomic():
            membership = Membership.objects.create(org=org, user=user, role=role, role_changed_at=clock.now())
    except IntegrityError as exc:
        raise Conflict("That user is already a member of this organization.") from exc
    record(Event.MEMBER_ADDED, context=context, org=org, target=membership,
           details={"member": _email(user), "role": role})
    signals.member_added.send(sender=Membership, membership=membership, context=context)
    return membership


def _email(user: Any) -> str:
    return str(getattr(user, getattr(user, "EMAIL_FIELD", "email"), "") or "")


@transaction.atomic
def add_member(*, org: Organization, user: Any, role: str = Role.USER,
               context: RequestContext | None = None) -> Membership:
    """Add ``user`` to ``org`` with ``role`` (``user`` by default: least privilege)."""
    context = context or RequestContext.system()
    _check_role(role)
    _require_admin(org, context, assigning=role)
    from twig_auth.authz import sod

    sod.check_new_member(org, role)  # separation of duties: a role alone may hold both sides of a rule
    return _create_membership(org, user, role, context)


@transaction.atomic
def change_role(*, membership: Membership, role: str, context: RequestContext | None = None) -> Membership:
    """Change a member's role; the last super admin cannot be demoted."""
    context = context or RequestContext.system()
    _check_role(role)
    membership = Membership.objects.select_for_update().select_related("org", "user").get(pk=membership.pk)
    _require_admin(membership.org, context, assigning=role, target=membership)
    old = membership.role
    if old == role:
        return membership
    if old == Role.SUPER_ADMIN:
        _keep_a_super_admin(membership)
    from twig_auth.authz import sod

    sod.check_role_change(membership, role)  # separation of duties: refuse holding both sides of a rule
    membership.role = role
    membership.role_changed_at = clock.now()
    membership.save(update_fields=["role", "role_changed_at"])
    record(Event.ROLE_CHANGED, context=context, org=membership.org, target=membership,
           details={"member": _email(membership.user), "from": old, "to": role})
    signals.role_changed.send(sender=Membership, membership=membership, old_role=old, new_role=role,
                              context=context)
    return membership


@transaction.atomic
def remove_member(*, membership: Membership, context: RequestContext | None = None) -> None:
    """Remove a member (their group memberships go with them); the last super admin stays."""
    context = context or RequestContext.system()
    membership = Membership.objects.select_for_update().select_related("org", "user").get(pk=membership.pk)
    is_self = context.actor is not None and context.actor.pk == membership.user_id
    if not is_self:
        _require_admin(membership.org, context, target=membership)
    _keep_a_super_admin(membership)
    org, email = membership.org, _email(membership.user)
    record(Event.MEMBER_REMOVED, context=context, org=org, target=membership,
           details={"member": email, "role": membership.role, "self": is_self})
    signals.member_removed.send(sender=Membership, membership=membership, context=context)
    membership.delete()


@transaction.atomic
def deactivate_member(*, membership: Membership, reason: str = "manual", context: RequestContext | None = None,
                      details: dict[str, Any] | None = None) -> Membership:
    """Deactivate a member in this org, reversibly: the membership, its groups, grants and API keys stay, but no
    session, access token or API key acts as it until :func:`reactivate_member` (its token families are revoked,
    its keys' cached verifications dropped). Never yourself, nor the org's last active super admin."""
    context = context or RequestContext.system()
    if reason not in ("inactive", "manual"):
        raise InvalidInput({"reason": ["Choose inactive or manual."]})
    membership = Membership.objects.select_for_update().select_related("org", "user").get(pk=membership.pk)
    if context.actor is not None and context.actor.pk == membership.user_id:
        raise PermissionDenied("You cannot deactivate yourself.")
    _require_admin(membership.org, context, target=membership)
    if membership.deactivated_at is not None:
        raise Conflict("That member is already deactivated.")
    _keep_a_super_admin(membership)
    membership.deactivated_at = clock.now()
    membership.deactivation_reason = reason
    membership.save(update_fields=["deactivated_at", "deactivation_reason"])
    record(Event.MEMBER_DEACTIVATED, context=context, org=membership.org, target=membership,
           details={"member": _email(membership.user), "role": membership.role, "reason": reason, **(details or {})})
    signals.member_deactivated.send(sender=Membership, membership=membership, reason=reason, context=context)
    return membership


@transaction.atomic
def reactivate_member(*, membership: Membership, context: RequestContext | None = None) -> Membership:
    """Undo :func:`deactivate_member`: the member's credentials work again (token families revoked at
    deactivation stay revoked: they sign in again). Inactivity is counted afresh from now."""
    context = context or RequestContext.system()
    membership = Membership.objects.select_for_update().select_related("org", "user").get(pk=membership.pk)
    _require_admin(membership.org, context, target=membership)
    if membership.deactivated_at is None:
        raise Conflict("That member is not deactivated.")
    since, reason = membership.deactivated_at, membership.deactivation_reason
    membership.deactivated_at = None
    membership.deactivation_reason = ""
    membership.reactivated_at = clock.now()
    membership.save(update_fields=["deactivated_at", "deactivation_reason", "reactivated_at"])
    record(Event.MEMBER_REACTIVATED, context=context, org=membership.org, target=membership,
           details={"member": _email(membership.user), "role": membership.role, "reason": reason,
                    "deactivatedAt": since.isoformat()})
    signals.member_reactivated.send(sender=Membership, membership=membership, context=context)
    return membership


@transaction.atomic
def update_org_settings(*, org: Organization, patch: Any, context: RequestContext | None = None) -> dict[str, Any]:
    """Validate and merge a settings PATCH; return the full effective document."""
    context = context or RequestContext.system()
    if not is_operator(context):
        mine = actor_membership(org, context)
        if mine is None or not mine.has_role(Role.ADMIN):
            raise PermissionDenied("Only admins can change organization settings.")
    clean = policy.validate_patch(patch, enterprise=org.is_enterprise)
    org = Organization.objects.select_for_update().get(pk=org.pk)
    if clean.get("sso", {}).get("enforce"):
        from twig_auth.sso.enforcement import check_can_enforce

        check_can_enforce(org)  # enforcing without a working connection would lock the members out
    org.settings = policy.merge(org.settings or {}, clean)
    org.save(update_fields=["settings"])
    record(Event.ORG_SETTINGS_CHANGED, context=context, org=org, target=org,
           details={"changed": sorted(clean)})
    from twig_auth.usersessions.policy import forget_policies

    forget_policies()
    signals.org_settings_changed.send(sender=Organization, org=org, changed=sorted(clean), context=context)
    return policy.effective(org)


# --- groups -------------------------------------------------------------------------------------------


def _require_group_manager(group: Group, context: RequestContext, *, full_control: bool = False) -> None:
    """Org admins manage every group; a group's managers add and remove members; its admins do all."""
    if is_operator(context):
        return
    mine = actor_membership(group.org, context)
    if mine is None:
        raise PermissionDenied("You are not a member of this organization.")
    if mine.has_role(Role.ADMIN):
        return
    link = GroupMembership.objects.filter(group=group, membership=mine).first()
    needed = GroupRole.ADMIN if full_control else GroupRole.MANAGER
    if link is None or GROUP_ROLE_RANK[link.role] < GROUP_ROLE_RANK[needed]:
        raise PermissionDenied("You cannot manage this group.")


@transaction.atomic
def create_group(*, org: Organization, name: str, description: str = "",
                 context: RequestContext | None = None) -> Group:
    context = context or RequestContext.system()
    if not is_operator(context):
        mine = actor_membership(org, context)
        if mine is None or not role_at_least(mine.role, Role.MANAGER):
            raise PermissionDenied("Only managers and admins can create groups.")
    group = Group(org=org, name=(name or "").strip(), description=description)
    _full_clean(group, exclude=["org"])
    if Group.objects.filter(org=org, name__iexact=group.name).exists():
        raise InvalidInput({"name": ["A group with this name already exists."]})
    group.save()
    record(Event.GROUP_CREATED, context=context, org=org, target=group, details={"name": group.name})
    signals.group_changed.send(sender=Group, group=group, action="created", context=context)
    creator = actor_membership(org, context)
    if creator is not None and not creator.has_role(Role.ADMIN):
        GroupMembership.objects.create(group=group, membership=creator, role=GroupRole.ADMIN)
    return group


@transaction.atomic
def rename_group(*, group: Group, name: str, description: str | None = None,
                 context: RequestContext | None = None) -> Group:
    context = context or RequestContext.system()
    _require_group_manager(group, context, full_control=True)
    old = group.name
    group.name = (name or "").strip()
    if description is not None:
        group.description = description
    _full_clean(group, exclude=["org"])
    if Group.objects.filter(org=group.org_id, name__iexact=group.name).exclude(pk=group.pk).exists():
        raise InvalidInput({"name": ["A group with this name already exists."]})
    group.save()
    record(Event.GROUP_UPDATED, context=context, org=group.org, target=group, details={"from": old, "to": group.name})
    signals.group_changed.send(sender=Group, group=group, action="updated", context=context)
    return group


@transaction.atomic
def delete_group(*, group: Group, context: RequestContext | None = None) -> None:
    context = context or RequestContext.system()
    _require_group_manager(group, context, full_control=True)
    record(Event.GROUP_DELETED, context=context, org=group.org, target=group, details={"name": group.name})
    signals.group_changed.send(sender=Group, group=group, action="deleted", context=context)
    group.delete()


@transaction.atomic
def add_to_group(*, group: Group, membership: Membership, role: str = GroupRole.MEMBER,
                 context: RequestContext | None = None) -> GroupMembership:
    context = context or RequestContext.system()
    if role not in GROUP_ROLE_RANK:
        raise InvalidInput({"role": [f"Choose one of {', '.join(GroupRole.values)}."]})
    if membership.org_id != group.org_id:
        raise InvalidInput({"membership": ["That person is not a member of this group's organization."]})
    _require_group_manager(group, context, full_control=role != GroupRole.MEMBER)
    from twig_auth.authz import sod

    sod.check_group_join(membership, group)  # separation of duties: the group's grants become theirs
    link, created = GroupMembership.objects.get_or_create(group=group, membership=membership,
                                                          defaults={"role": role})
    if not created:
        raise Conflict("That member is already in the group.")
    record(Event.GROUP_MEMBER_ADDED, context=context, org=group.org, target=group,
           details={"member": _email(membership.user), "group_role": role})
    signals.group_membership_changed.send(sender=GroupMembership, group=group, membership=membership,
                                          action="added", context=context)
    return link


@transaction.atomic
def change_group_role(*, link: GroupMembership, role: str, context: RequestContext | None = None) -> GroupMembership:
    context = context or RequestContext.system()
    if role not in GROUP_ROLE_RANK:
        raise InvalidInput({"role": [f"Choose one of {', '.join(GroupRole.values)}."]})
    link = GroupMembership.objects.select_for_update().select_related("group__org", "membership__user").get(pk=link.pk)
    _require_group_manager(link.group, context, full_control=True)
    old = link.role
    link.role = role
    link.save(update_fields=["role"])
    record(Event.GROUP_ROLE_CHANGED, context=context, org=link.group.org, target=link.group,
           details={"member": _email(link.membership.user), "from": old, "to": role})
    signals.group_membership_changed.send(sender=GroupMembership, group=link.group, membership=link.membership,
                                          action="role_changed", context=context)
    return link


@transaction.atomic
def remove_from_group(*, link: GroupMembership, context: RequestContext | None = None) -> None:
    context = context or RequestContext.system()
    link = GroupMembership.objects.select_related("group__org", "membership__user").get(pk=link.pk)
    _require_group_manager(link.group, context, full_control=link.role != GroupRole.MEMBER)
    record(Event.GROUP_MEMBER_REMOVED, context=context, org=link.group.org, target=link.group,
           details={"member": _email(link.membership.user), "group_role": link.role})
    signals.group_membership_changed.send(sender=GroupMembership, group=link.group, membership=link.membership,
                                          action="removed", context=context)
    link.delete()
