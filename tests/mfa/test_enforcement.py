"""Org MFA policy: who must enroll, the grace period from when it first applied, the cached per-request gate."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import caches

from tests.conftest import oathtool
from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import MfaEnrollmentRequired
from twig_auth.mfa import enforcement, services, totp
from twig_auth.mfa.devices import TOTP
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Membership
from twig_auth.orgs.policy import cached_effective, defaults

CTX = RequestContext(ip="192.0.2.5", user_agent="pytest")
T0 = dt.datetime(2026, 11, 23, 12, 0, 10, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


def blocked(membership: Membership) -> bool:
    membership.refresh_from_db()
    try:
        enforcement.check(membership.user_id, membership.org_id, membership.role)
    except MfaEnrollmentRequired as exc:
        assert exc.code == "mfa_enrollment_required"
        return True
    return False


def since(membership: Membership) -> dt.datetime | None:
    return Membership.objects.get(pk=membership.pk).mfa_required_since


def enroll(user) -> object:
    device = services.start_totp(user=user)
    code = oathtool(totp.secret_b32(device), at=clock.now().timestamp())
    services.confirm_totp(user=user, device_id=device.pk, code=code, context=CTX)
    return device


def gate(membership: Membership) -> object:
    return caches[app_settings.REDIS_CACHE_ALIAS].get(enforcement.gate_key(membership.user_id, membership.org_id))


@pytest.fixture
def staff(org, make_member):
    """One member of each role in ``org``, all added at T0."""
    with clock.frozen(T0):
        return {role: make_member(org, role) for role in ("super_admin", "admin", "manager", "user")}


def test_by_default_only_admins_and_super_admins_are_covered(staff):
    assert defaults()["mfa"] == {"requiredForAdmins": True, "requiredForAll": False, "gracePeriodDays": 7}
    assert enforcement.roles_covered(defaults()["mfa"]) == ["super_admin", "admin"]
    assert {role: since(m) for role, m in staff.items()} == {"super_admin": T0, "admin": T0,
                                                             "manager": None, "user": None}
    for role, membership in staff.items():
        status = enforcement.status(membership)
        assert (status.required, status.enrolled) == (role in ("super_admin", "admin"), False)
        assert status.deadline == (T0 + 7 * DAY if status.required else None)


def test_required_for_all_covers_everyone():
    policy = {"requiredForAdmins": False, "requiredForAll": True, "gracePeriodDays": 7}
    assert enforcement.roles_covered(policy) == ["super_admin", "admin", "manager", "user"]
    assert enforcement.roles_covered({**policy, "requiredForAll": False}) == []


def test_members_are_blocked_only_once_the_seven_day_grace_is_over(staff):
    with clock.frozen(T0 + 7 * DAY - SECOND):
        assert not any(blocked(m) for m in staff.values())
        status = enforcement.status(staff["admin"])
        assert status.in_grace and not status.blocked and status.days_left == 1
    with clock.frozen(T0 + 7 * DAY):
        assert {role for role, m in staff.items() if blocked(m)} == {"super_admin", "admin"}
        status = enforcement.status(staff["admin"])
        assert status.blocked and not status.in_grace and status.days_left == 0
    with clock.frozen(T0 + 365 * DAY):
        assert not blocked(staff["user"]) and not blocked(staff["manager"])


def test_the_cached_deadline_still_blocks_when_the_clock_moves_on(staff):
    admin = staff["admin"]
    with clock.frozen(T0 + DAY) as now:
        assert not blocked(admin)
        assert gate(admin) == (T0 + 7 * DAY).timestamp()  # cached while in grace …
        now.advance(days=6)
        assert blocked(admin)  # … and the cached value is a deadline, not a verdict


def test_enrolling_lifts_the_block_at_once(staff):
    admin = staff["admin"]
    with clock.frozen(T0 + 8 * DAY):
        assert blocked(admin) and gate(admin) is not None  # the blocked standing is cached
        enroll(admin.user)
        assert gate(admin) is None  # enrollment dropped it
        assert not blocked(admin)
        assert gate(admin) == enforcement.NOT_REQUIRED


def test_removing_the_only_device_after_the_grace_period_blocks_again(staff):
    admin = staff["admin"]
    with clock.frozen(T0 + DAY):
        device = enroll(admin.user)
    with clock.frozen(T0 + 30 * DAY):
        assert not blocked(admin)  # cached: enrolled
        services.remove_device(user=admin.user, kind=TOTP, device_id=device.pk, context=CTX)
        assert blocked(admin)


def test_an_admin_mfa_reset_blocks_a_member_past_the_grace_period(staff):
    owner, admin = staff["super_admin"], staff["admin"]
    with clock.frozen(T0 + DAY):
        enroll(admin.user)
    with clock.frozen(T0 + 30 * DAY):
        assert not blocked(admin)
        services.reset_member(membership=admin, context=RequestContext(actor=owner.user))
        assert blocked(admin)


def test_promotion_starts_the_grace_period_then(staff):
    member = staff["user"]
    with clock.frozen(T0 + 10 * DAY):
        assert not blocked(member)
        org_services.change_role(membership=member, role="admin")
        assert since(member) == T0 + 10 * DAY
        assert not blocked(member)
    with clock.frozen(T0 + 17 * DAY - SECOND):
        assert not blocked(member)
    with clock.frozen(T0 + 17 * DAY):
        assert blocked(member)


def test_a_second_promotion_keeps_the_first_start(staff):
    member = staff["manager"]
    with clock.frozen(T0 + DAY):
        org_services.change_role(membership=member, role="admin")
    with clock.frozen(T0 + 2 * DAY):
        org_services.change_role(membership=member, role="manager")
        assert not blocked(member)
    with clock.frozen(T0 + 20 * DAY):
        org_services.change_role(membership=member, role="admin")
        assert since(member) == T0 + DAY  # "from when the requirement first applied"
        assert blocked(member)


def test_a_demotion_drops_the_cached_block(staff):
    admin = staff["admin"]
    with clock.frozen(T0 + 8 * DAY):
        assert blocked(admin)
        org_services.change_role(membership=admin, role="user")
        assert gate(admin) is None
        assert not blocked(admin)


def test_requiring_mfa_for_all_starts_grace_for_the_newly_covered_only(org, staff):
    with clock.frozen(T0 + 8 * DAY):
        assert blocked(staff["admin"]) and not blocked(staff["user"])
    with clock.frozen(T0 + 10 * DAY):
        org_services.update_org_settings(org=org, patch={"mfa": {"requiredForAll": True}})
        assert {role: since(m) for role, m in staff.items()} == {
            "super_admin": T0, "admin": T0, "manager": T0 + 10 * DAY, "user": T0 + 10 * DAY}
        assert not blocked(staff["user"]) and not blocked(staff["manager"])
        assert blocked(staff["admin"])
    with clock.frozen(T0 + 17 * DAY - SECOND):
        assert not blocked(staff["user"])
    with clock.frozen(T0 + 17 * DAY):
        assert blocked(staff["user"]) and blocked(staff["manager"])


def test_a_policy_change_drops_cached_standings(org, staff):
    admin = staff["admin"]
    with clock.frozen(T0 + 3 * DAY):
        assert not blocked(admin)  # deadline T0 + 7 days, cached
        assert cached_effective(org.pk)["mfa"]["gracePeriodDays"] == 7
        org_services.update_org_settings(org=org, patch={"mfa": {"gracePeriodDays": 2}})
        assert gate(admin) is None
        assert blocked(admin)
        org_services.update_org_settings(org=org, patch={"mfa": {"requiredForAdmins": False}})
        assert not blocked(admin)
        org_services.update_org_settings(org=org, patch={"mfa": {"requiredForAdmins": True, "gracePeriodDays": 30}})
        assert not blocked(admin)
        assert since(admin) == T0  # relaxing and tightening again does not restart the grace


def test_members_added_under_requiredforall_start_their_grace_when_added(org, make_member):
    org_services.update_org_settings(org=org, patch={"mfa": {"requiredForAll": True, "gracePeriodDays": 0}})
    with clock.frozen(T0):
        member = make_member(org, "user")
        assert since(member) == T0
        assert blocked(member)  # a grace period of 0 days blocks at once
        enroll(member.user)
        assert not blocked(member)


def test_a_member_without_a_recorded_start_gets_one_on_first_check(org, staff):
    admin = staff["admin"]
    Membership.objects.filter(pk=admin.pk).update(mfa_required_since=None)  # e.g. rows from before MFA
    with clock.frozen(T0 + 30 * DAY):
        assert not blocked(admin)
        assert since(admin) == T0 + 30 * DAY


def test_enrollment_in_one_org_counts_in_every_org(staff, make_org):
    other = make_org()
    admin = staff["admin"]
    with clock.frozen(T0):
        elsewhere = org_services.add_member(org=other, user=admin.user, role="admin")
    with clock.frozen(T0 + 8 * DAY):
        assert blocked(admin) and blocked(elsewhere)
        enroll(admin.user)
        assert not blocked(admin) and not blocked(elsewhere)


def test_someone_who_is_not_a_member_is_never_blocked(staff, make_user):
    outsider = make_user()
    with clock.frozen(T0 + 30 * DAY):
        enforcement.check(outsider.pk, staff["admin"].org_id, "admin")  # no membership row: nothing to enforce


def test_deadline_costs_no_sql_for_members_the_policy_does_not_cover(staff, django_assert_num_queries):
    member = staff["user"]
    cached_effective(member.org_id)  # the per-process org document, warm after the first request
    with django_assert_num_queries(0):
        assert enforcement.deadline(member.user_id, member.org_id, member.role) == enforcement.NOT_REQUIRED
        enforcement.check(member.user_id, member.org_id, member.role)


def test_deadline_costs_no_sql_on_a_warm_cache(staff, django_assert_num_queries, django_assert_max_num_queries):
    admin, owner = staff["admin"], staff["super_admin"]
    enroll(owner.user)
    for membership, expected in ((admin, (T0 + 7 * DAY).timestamp()), (owner, enforcement.NOT_REQUIRED)):
        with django_assert_max_num_queries(5):
            assert enforcement.deadline(membership.user_id, membership.org_id, membership.role) == expected
        with django_assert_num_queries(0):
            assert enforcement.deadline(membership.user_id, membership.org_id, membership.role) == expected
            enforcement.check(membership.user_id, membership.org_id, membership.role)
