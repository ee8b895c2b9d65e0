"""Members, roles and groups: each workflow is one transaction with one audit event."""

from __future__ import annotations

import pytest

from twig_auth.audit.models import AuditEvent
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict, InvalidInput, PermissionDenied
from twig_auth.orgs import services
from twig_auth.orgs.models import Group, GroupMembership, Membership, Organization


def ctx(membership: Membership) -> RequestContext:
    return RequestContext(actor=membership.user, ip="198.51.100.1")


def test_create_organization_makes_the_owner_super_admin_and_audits(make_user):
    owner = make_user("boss@example.test")
    org = services.create_organization(slug="globex", name="Globex", plan="team", owner=owner)
    assert Membership.objects.get(org=org, user=owner).role == "super_admin"
    assert list(AuditEvent.objects.filter(org=org).order_by("id").values_list("event", flat=True)) == [
        "ORG_CREATED", "MEMBER_ADDED"]


def test_bad_slug_and_plan_are_refused_and_nothing_is_written(db):
    with pytest.raises(InvalidInput) as info:
        services.create_organization(slug="Bad Slug!", name="", plan="gold")
    assert set(info.value.errors) == {"slug", "name", "plan"}
    assert Organization.objects.count() == 0 and AuditEvent.objects.count() == 0


def test_new_members_get_least_privilege(org, owner, make_user):
    member = services.add_member(org=org, user=make_user(), context=ctx(owner))
    assert member.role == "user"
    event = AuditEvent.objects.get(event="MEMBER_ADDED", target_id=str(member.pk))
    assert event.user_id == owner.user_id and event.details["role"] == "user"


def test_a_user_can_belong_to_several_orgs(make_org, make_user):
    user = make_user()
    a, b = make_org("a-co"), make_org("b-co")
    services.add_member(org=a, user=user, role="manager")
    services.add_member(org=b, user=user)
    assert {(m.org.slug, m.role) for m in Membership.objects.filter(user=user)} == {("a-co", "manager"),
                                                                                     ("b-co", "user")}


def test_adding_someone_twice_is_a_clear_error(org, owner):
    with pytest.raises(Conflict):
        services.add_member(org=org, user=owner.user)


def test_role_change_is_audited_with_old_and_new_role(org, owner, make_member):
    member = make_member(org)
    services.change_role(membership=member, role="manager", context=ctx(owner))
    event = AuditEvent.objects.get(event="ROLE_CHANGED")
    assert event.details == {"member": member.user.email, "from": "user", "to": "manager"}
    assert event.ip_address == "198.51.100.1" and event.org_id == org.pk


def test_unknown_role_is_invalid(org, make_member):
    with pytest.raises(InvalidInput) as info:
        services.change_role(membership=make_member(org), role="god")
    assert "role" in info.value.errors


def test_only_admins_manage_members(org, make_member, make_user):
    manager = make_member(org, "manager")
    with pytest.raises(PermissionDenied):
        services.add_member(org=org, user=make_user(), context=ctx(manager))
    with pytest.raises(PermissionDenied):
        services.change_role(membership=make_member(org), role="manager", context=ctx(manager))


def test_admins_cannot_grant_or_touch_super_admin(org, owner, make_member):
    admin = make_member(org, "admin")
    target = make_member(org)
    with pytest.raises(PermissionDenied):
        services.change_role(membership=target, role="super_admin", context=ctx(admin))
    with pytest.raises(PermissionDenied):
        services.change_role(membership=owner, role="user", context=ctx(admin))
    with pytest.raises(PermissionDenied):
        services.remove_member(membership=owner, context=ctx(admin))
    services.change_role(membership=target, role="admin", context=ctx(admin))
    assert Membership.objects.get(pk=target.pk).role == "admin"


def test_the_last_super_admin_cannot_be_demoted_or_removed(org, owner, make_member):
    with pytest.raises(Conflict):
        services.change_role(membership=owner, role="admin", context=ctx(owner))
    with pytest.raises(Conflict):
        services.remove_member(membership=owner, context=ctx(owner))
    second = make_member(org, "super_admin")
    services.change_role(membership=owner, role="admin", context=ctx(second))
    assert Membership.objects.get(pk=owner.pk).role == "admin"


def test_remove_member_audits_and_deletes_group_links(org, owner, make_member):
    member = make_member(org)
    group = services.create_group(org=org, name="Support", context=ctx(owner))
    services.add_to_group(group=group, membership=member, context=ctx(owner))
    services.remove_member(membership=member, context=ctx(owner))
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert not GroupMembership.objects.filter(group=group).exists()
    assert AuditEvent.objects.filter(event="MEMBER_REMOVED", details__member=member.user.email).exists()


def test_a_member_may_leave_on_their_own(org, make_member):
    member = make_member(org)
    services.remove_member(membership=member, context=ctx(member))
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_group_lifecycle_is_audited(org, owner, make_member):
    member = make_member(org)
    group = services.create_group(org=org, name="Support", context=ctx(owner))
    link = services.add_to_group(group=group, membership=member, context=ctx(owner))
    services.change_group_role(link=link, role="manager", context=ctx(owner))
    services.rename_group(group=group, name="Customer Support", context=ctx(owner))
    services.remove_from_group(link=link, context=ctx(owner))
    services.delete_group(group=group, context=ctx(owner))
    assert list(AuditEvent.objects.filter(event__startswith="GROUP_").order_by("id")
                .values_list("event", flat=True)) == [
        "GROUP_CREATED", "GROUP_MEMBER_ADDED", "GROUP_ROLE_CHANGED", "GROUP_UPDATED", "GROUP_MEMBER_REMOVED",
        "GROUP_DELETED"]
    assert not Group.objects.exists()


def test_group_managers_add_members_but_only_group_admins_promote(org, owner, make_member):
    group = services.create_group(org=org, name="Support", context=ctx(owner))
    gm = make_member(org)
    services.add_to_group(group=group, membership=gm, role="manager", context=ctx(owner))
    newcomer = make_member(org)
    link = services.add_to_group(group=group, membership=newcomer, context=ctx(gm))
    assert link.role == "member"
    with pytest.raises(PermissionDenied):
        services.change_group_role(link=link, role="admin", context=ctx(gm))
    outsider = make_member(org)
    with pytest.raises(PermissionDenied):
        services.add_to_group(group=group, membership=make_member(org), context=ctx(outsider))


def test_a_manager_who_creates_a_group_administers_it(org, make_member):
    manager = make_member(org, "manager")
    group = services.create_group(org=org, name="Team A", context=ctx(manager))
    assert GroupMembership.objects.get(group=group, membership=manager).role == "admin"
    with pytest.raises(PermissionDenied):
        services.create_group(org=org, name="Nope", context=ctx(make_member(org)))


def test_group_names_are_unique_per_org_ignoring_case(org, owner, make_org):
    services.create_group(org=org, name="Support", context=ctx(owner))
    with pytest.raises(InvalidInput):
        services.create_group(org=org, name="support", context=ctx(owner))
    services.create_group(org=make_org("other"), name="Support")


def test_groups_take_members_of_their_own_org_only(org, owner, make_org, make_member):
    group = services.create_group(org=org, name="Support", context=ctx(owner))
    stranger = make_member(make_org("other"))
    with pytest.raises(InvalidInput):
        services.add_to_group(group=group, membership=stranger)
