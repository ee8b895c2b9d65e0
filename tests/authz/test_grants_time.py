"""Grants in time: expiry, windows on the grant, on the group and on the member, in several time zones, around
midnight and DST changes; grants_for; and authorized() agreeing with authorize() at each moment."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.authz import helpers_decisions as h
from twig_auth.authz.decisions import authorize, authorized, explain
from twig_auth.authz.grants import grants_for
from twig_auth.core import clock
from twig_auth.orgs.models import Membership
from twig_project.workspace.models import Agent

UTC = dt.UTC
WEEKDAYS_9_TO_5_NY = {"accessControl": {"allowedHours": {"start": 9, "end": 17, "timezone": "America/New_York"},
                                        "allowedDays": [1, 2, 3, 4, 5]}}


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def member(org, owner, make_member):
    return make_member(org, "user")


def agrees(actor, action, when) -> set:
    """Return the agents ``actor`` may act on at ``when``, checking both APIs give the same set."""
    actor = Membership.objects.get(pk=actor.pk)
    by_object = {a for a in Agent.objects.all() if authorize(actor, action, a, at=when).allowed}
    assert set(authorized(actor, action, Agent.objects.all(), at=when)) == by_object
    return by_object


# --- expiry ----------------------------------------------------------------------------------------------------

def test_a_grant_ends_at_its_expiry(org, owner, member):
    a = h.agent(org)
    end = h.MONDAY_3PM + dt.timedelta(hours=1)
    with clock.frozen(h.MONDAY_3PM):
        g = h.grant(org, a, "use", to=member, expires_at=end)
    assert agrees(member, "use", end - dt.timedelta(seconds=1)) == {a}
    assert agrees(member, "use", end) == set()
    d = explain(member, "use", a, at=end + dt.timedelta(days=1))
    assert not d.allowed
    grant_step = next(s for s in d.steps if s.kind == "grant")
    assert grant_step.detail == (f'grant {g.id} ("use" on agent:{a.pk} to the member) does not apply: it expired '
                                 f"at {end:%Y-%m-%d %H:%M} UTC")


def test_expired_grants_are_not_loaded(org, owner, member):
    a = h.agent(org)
    live = h.grant(org, a, "use", to=member)
    h.grant(org, a, "edit", to=member, expires_at=h.MONDAY_3PM - dt.timedelta(seconds=1))
    assert grants_for(member, now=h.MONDAY_3PM) == [live]


# --- windows on a grant -------------------------------------------------------------------------------------------

def test_grant_window_weekdays_nine_to_five_in_new_york(org, owner, member):
    a = h.agent(org)
    h.grant(org, a, "use", to=member, access_control=WEEKDAYS_9_TO_5_NY)
    assert agrees(member, "use", at(2026, 3, 9, 13, 0)) == {a}  # Monday 09:00 EDT
    assert agrees(member, "use", at(2026, 3, 9, 12, 59)) == set()  # 08:59
    assert agrees(member, "use", at(2026, 3, 9, 20, 59)) == {a}  # 16:59
    assert agrees(member, "use", at(2026, 3, 9, 21, 0)) == set()  # 17:00: end is exclusive
    assert agrees(member, "use", at(2026, 3, 14, 15, 0)) == set()  # Saturday 11:00
    d = authorize(member, "use", a, at=at(2026, 3, 9, 21, 30))
    assert "outside the allowed hours 09:00–17:00 America/New_York (it is 17:30 on Monday there)" in d.steps[-2].detail


def test_window_in_a_half_hour_zone(org, owner, member):
    a = h.agent(org)
    h.grant(org, a, "view", to=member, access_control={"allowedHours": {"start": 9, "end": 17,
                                                                         "timezone": "Asia/Kolkata"}})  # bare body
    assert agrees(member, "view", at(2026, 3, 9, 3, 29)) == set()  # 08:59 IST
    assert agrees(member, "view", at(2026, 3, 9, 3, 30)) == {a}  # 09:00 IST


def test_window_without_a_zone_reads_the_org_timezone(org, owner, member):
    org.settings = {"timezone": "Asia/Tokyo"}
    org.save()
    a = h.agent(org)
    h.grant(org, a, "view", to=member, access_control={"accessControl": {"allowedHours": {"start": 9, "end": 17}}})
    assert agrees(member, "view", at(2026, 3, 9, 0, 0)) == {a}  # 09:00 in Tokyo
    assert agrees(member, "view", at(2026, 3, 9, 15, 0)) == set()  # midnight in Tokyo, 15:00 UTC


def test_window_across_midnight_counts_the_day_it_opened(org, owner, member):
    a = h.agent(org)
    h.grant(org, a, "view", to=member, access_control={"accessControl": {
        "allowedHours": {"start": 22, "end": 6, "timezone": "Europe/Berlin"}, "allowedDays": [1, 2, 3, 4, 5]}})
    # Berlin is UTC+1 in early March 2026
    assert agrees(member, "view", at(2026, 3, 6, 22, 0)) == {a}  # Friday 23:00
    assert agrees(member, "view", at(2026, 3, 7, 2, 0)) == {a}  # Saturday 03:00, Friday's window
    assert agrees(member, "view", at(2026, 3, 7, 22, 0)) == set()  # Saturday 23:00
    assert agrees(member, "view", at(2026, 3, 9, 2, 0)) == set()  # Monday 03:00, Sunday's window
    assert agrees(member, "view", at(2026, 3, 9, 12, 0)) == set()  # Monday 13:00


def test_dst_spring_forward_and_fall_back_in_new_york(org, owner, member):
    a, b = h.agent(org), h.agent(org)
    # 02:00–03:00 does not exist on 2026-03-08 in New York: the window never opens that night
    h.grant(org, a, "view", to=member, access_control={"allowedHours": {"start": 2, "end": 3,
                                                                         "timezone": "America/New_York"}})
    spring = [at(2026, 3, 8, 6, 0) + dt.timedelta(minutes=15 * i) for i in range(12)]  # 01:00 EST … 04:45 EDT
    assert [bool(agrees(member, "view", t)) for t in spring] == [False] * 12
    assert agrees(member, "view", at(2026, 3, 9, 6, 30)) == {a}  # 02:30 EDT the next night
    # 01:00–02:00 happens twice on 2026-11-01: both count
    h.grant(org, b, "use", to=member, access_control={"allowedHours": {"start": 1, "end": 2,
                                                                        "timezone": "America/New_York"}})
    assert b in agrees(member, "use", at(2026, 11, 1, 5, 30))  # 01:30 EDT
    assert b in agrees(member, "use", at(2026, 11, 1, 6, 30))  # 01:30 EST
    assert b not in agrees(member, "use", at(2026, 11, 1, 7, 30))  # 02:30 EST


# --- windows on a group and on the member ---------------------------------------------------------------------------

def test_group_window_gates_only_the_groups_grants(org, owner, member):
    night = h.group(org, "Night shift", member, access_control={"allowedHours": {"start": 22, "end": 6,
                                                                                 "timezone": "UTC"}})
    a, b = h.agent(org), h.agent(org)
    h.grant(org, a, "use", to=night)
    h.grant(org, b, "use", to=member)
    assert agrees(member, "use", at(2026, 3, 9, 23, 0)) == {a, b}
    assert agrees(member, "use", at(2026, 3, 9, 12, 0)) == {b}
    d = explain(member, "use", a, at=at(2026, 3, 9, 12, 0))
    step = next(s for s in d.steps if s.kind == "grant")
    assert 'to group "Night shift") does not apply: group "Night shift" is outside the allowed hours 22:00–06:00 UTC' \
        in step.detail


def test_member_window_closes_everything_even_the_role(org, owner, make_member):
    admin = make_member(org, "admin")
    admin.access_control = WEEKDAYS_9_TO_5_NY
    admin.save()
    a = h.agent(org)
    h.grant(org, a, "deploy", to=admin)
    assert agrees(admin, "manage", at(2026, 3, 9, 15, 0)) == {a}
    assert agrees(admin, "deploy", at(2026, 3, 9, 15, 0)) == {a}
    night = at(2026, 3, 10, 3, 0)  # Monday 23:00 EDT
    assert agrees(admin, "view", night) == set()
    d = authorize(Membership.objects.get(pk=admin.pk), "view", a, at=night)
    assert d.decided_by == "time_window" and d.reason.startswith("The member's access window is closed: outside")
    assert agrees(owner, "view", night) == {a}


def test_a_window_that_no_longer_validates_allows_nothing(org, owner, member):
    a = h.agent(org)
    h.grant(org, a, "use", to=member, access_control={"allowedHours": {"start": 9, "end": 17,
                                                                        "timezone": "Mars/Olympus"}})
    assert agrees(member, "use", h.MONDAY_3PM) == set()
    member.access_control = {"allowedDays": [0]}
    member.save()
    h.grant(org, a, "view", to=member)
    assert agrees(member, "view", h.MONDAY_3PM) == set()
    d = authorize(Membership.objects.get(pk=member.pk), "view", a, at=h.MONDAY_3PM)
    assert d.decided_by == "time_window" and "its time window is invalid" in d.reason


# --- grants_for ----------------------------------------------------------------------------------------------------

def test_grants_for_reads_the_member_and_their_groups_only(org, owner, member, make_member, make_org):
    bob = make_member(org, "user")
    mine, theirs = h.group(org, "Mine", member), h.group(org, "Theirs", bob)
    other = make_org("globex")
    outsider = make_member(other, "user")
    a, s = h.agent(org), h.data_source(org)
    g1 = h.grant(org, a, "use", to=member)
    g2 = h.grant(org, "data_source:*", "process", to=mine)
    h.grant(org, a, "edit", to=theirs)
    h.grant(org, a, "edit", to=bob)
    h.grant(other, "agent:*", "manage", to=outsider)
    assert s
    assert set(grants_for(member)) == {g1, g2}
    assert grants_for(member, "data_source") == [g2]
    assert grants_for(member, "group") == []
    # a member of two orgs sees in each only that org's grants
    twin = Membership.objects.create(org=other, user=member.user, role="user")
    h.grant(other, "agent:*", "view", to=twin)
    assert set(grants_for(member)) == {g1, g2}
