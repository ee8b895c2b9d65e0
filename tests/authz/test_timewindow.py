"""Time windows: field-level validation, boundaries, windows past midnight, DST days and weekdays in zones
on both sides of UTC."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twig_auth.authz.timewindow import TimeWindow, parse_time_window, validate_access_control
from twig_auth.exceptions import InvalidInput

NY, BERLIN = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")
WEEKDAYS = [1, 2, 3, 4, 5]


def window(start=None, end=None, tz="America/New_York", days=None, default="UTC"):
    body = {}
    if start is not None:
        body["allowedHours"] = {"start": start, "end": end, "timezone": tz}
    if days is not None:
        body["allowedDays"] = days
    return parse_time_window({"accessControl": body}, default_timezone=default)


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.UTC)


def local(zone, *args, fold=0):
    return dt.datetime(*args, tzinfo=zone, fold=fold).astimezone(dt.UTC)


# --- validation -----------------------------------------------------------------------------------------


def test_contract_document_is_valid_and_normalized():
    doc = {"accessControl": {"allowedHours": {"start": 9, "end": 17, "timezone": "America/New_York"},
                             "allowedDays": [5, 1, 2, 3, 4, 4]}}
    assert validate_access_control(doc) == {"accessControl": {
        "allowedHours": {"start": 9, "end": 17, "timezone": "America/New_York"}, "allowedDays": [1, 2, 3, 4, 5]}}


@pytest.mark.parametrize(("document", "path", "fragment"), [
    ("9-17", "non_field_errors", "JSON object"),
    ({}, "accessControl", "required"),
    ({"accessControl": []}, "accessControl", "object"),
    ({"accessControl": {}, "extra": 1}, "extra", "Unknown field"),
    ({"accessControl": {"hours": {}}}, "accessControl.hours", "Unknown field"),
    ({"accessControl": {"allowedHours": "9-17"}}, "accessControl.allowedHours", "Must be an object"),
    ({"accessControl": {"allowedHours": {"end": 17}}}, "accessControl.allowedHours.start", "required"),
    ({"accessControl": {"allowedHours": {"start": 9}}}, "accessControl.allowedHours.end", "required"),
    ({"accessControl": {"allowedHours": {"start": 24, "end": 5}}}, "accessControl.allowedHours.start", "0 to 23"),
    ({"accessControl": {"allowedHours": {"start": -1, "end": 5}}}, "accessControl.allowedHours.start", "0 to 23"),
    ({"accessControl": {"allowedHours": {"start": 9, "end": 25}}}, "accessControl.allowedHours.end", "0 to 24"),
    ({"accessControl": {"allowedHours": {"start": 9.5, "end": 17}}}, "accessControl.allowedHours.start",
     "whole hour"),
    ({"accessControl": {"allowedHours": {"start": True, "end": 17}}}, "accessControl.allowedHours.start",
     "whole hour"),
    ({"accessControl": {"allowedHours": {"start": "9", "end": 17}}}, "accessControl.allowedHours.start",
     "whole hour"),
    ({"accessControl": {"allowedHours": {"start": 9, "end": 17, "timezone": "EST5EDTX"}}},
     "accessControl.allowedHours.timezone", "not a known time zone"),
    ({"accessControl": {"allowedHours": {"start": 9, "end": 17, "tz": "UTC"}}}, "accessControl.allowedHours.tz",
     "Unknown field"),
    ({"accessControl": {"allowedDays": []}}, "accessControl.allowedDays", "non-empty list"),
    ({"accessControl": {"allowedDays": "weekdays"}}, "accessControl.allowedDays", "non-empty list"),
    ({"accessControl": {"allowedDays": [0, 1]}}, "accessControl.allowedDays", "1 (Monday) to 7 (Sunday)"),
    ({"accessControl": {"allowedDays": [8]}}, "accessControl.allowedDays", "1 (Monday) to 7 (Sunday)"),
    ({"accessControl": {"allowedDays": ["Mon"]}}, "accessControl.allowedDays", "1 (Monday) to 7 (Sunday)"),
    ({"accessControl": {"allowedDays": [True]}}, "accessControl.allowedDays", "1 (Monday) to 7 (Sunday)"),
])
def test_each_problem_is_named_by_its_field_path(document, path, fragment):
    with pytest.raises(InvalidInput) as exc:
        validate_access_control(document)
    assert path in exc.value.errors, exc.value.errors
    assert any(fragment in m for m in exc.value.errors[path]), exc.value.errors[path]


def test_all_problems_are_reported_together():
    with pytest.raises(InvalidInput) as exc:
        validate_access_control({"accessControl": {"allowedHours": {"start": 30, "end": -2, "timezone": "X/Y"},
                                                   "allowedDays": [9]}})
    assert set(exc.value.errors) == {"accessControl.allowedHours.start", "accessControl.allowedHours.end",
                                     "accessControl.allowedHours.timezone", "accessControl.allowedDays"}


def test_round_trip_through_the_window_object():
    w = window(22, 6, "Europe/Berlin", [5, 1])
    assert w == TimeWindow(start=22, end=6, days=frozenset({1, 5}), timezone="Europe/Berlin")
    assert w.to_document() == {"accessControl": {"allowedHours": {"start": 22, "end": 6, "timezone": "Europe/Berlin"},
                                                 "allowedDays": [1, 5]}}


def test_an_unknown_default_timezone_is_refused():
    with pytest.raises(InvalidInput):
        parse_time_window({"accessControl": {"allowedDays": [1]}}, default_timezone="Nowhere/Land")


def test_a_naive_instant_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        window(9, 17).allows(dt.datetime(2026, 3, 9, 12))


# --- hours: start inclusive, end exclusive --------------------------------------------------------------


@pytest.mark.parametrize(("wall", "inside"), [
    ((8, 59, 59), False), ((9, 0, 0), True), ((12, 0, 0), True), ((16, 59, 59), True), ((17, 0, 0), False),
    ((23, 59, 59), False), ((0, 0, 0), False),
])
def test_nine_to_five_in_new_york(wall, inside):
    now = local(NY, 2026, 4, 15, *wall)  # a Wednesday, EDT
    assert window(9, 17).allows(now) is inside


@pytest.mark.parametrize(("wall", "inside"), [
    ((21, 59, 59), False), ((22, 0, 0), True), ((23, 59, 59), True), ((0, 0, 0), True), ((5, 59, 59), True),
    ((6, 0, 0), False), ((12, 0, 0), False),
])
def test_window_past_midnight(wall, inside):
    assert window(22, 6).allows(local(NY, 2026, 4, 15, *wall)) is inside


@pytest.mark.parametrize(("start", "end"), [(0, 24), (9, 9), (0, 0), (23, 23)])
def test_all_day_windows(start, end):
    w = window(start, end)
    assert w.all_day
    assert all(w.allows(utc(2026, 4, 15, 0) + dt.timedelta(minutes=m)) for m in range(0, 24 * 60, 7))


def test_end_24_means_until_midnight():
    w = window(22, 24)
    assert not w.allows(local(NY, 2026, 4, 15, 21, 59))
    assert w.allows(local(NY, 2026, 4, 15, 23, 59, 59))
    assert not w.allows(local(NY, 2026, 4, 16, 0, 0))


def test_refusal_names_the_window_and_the_local_time():
    assert window(9, 17).refusal(local(NY, 2026, 4, 15, 8, 30)) == (
        "outside the allowed hours 09:00–17:00 America/New_York (it is 08:30 on Wednesday there)")
    assert window(9, 17).refusal(local(NY, 2026, 4, 15, 9, 30)) is None


# --- days -----------------------------------------------------------------------------------------------


def test_weekdays_only():
    w = window(9, 17, days=WEEKDAYS)
    assert w.allows(local(NY, 2026, 4, 17, 10))  # Friday
    assert not w.allows(local(NY, 2026, 4, 18, 10))  # Saturday
    assert w.refusal(local(NY, 2026, 4, 18, 10)) == (
        "not an allowed day: it is Saturday 10:00 in America/New_York (allowed: Monday, Tuesday, Wednesday, "
        "Thursday, Friday)")


def test_a_window_past_midnight_counts_the_day_it_opened():
    w = window(22, 6, days=WEEKDAYS)
    assert w.allows(local(NY, 2026, 4, 17, 23))  # Friday night
    assert w.allows(local(NY, 2026, 4, 18, 3))  # Saturday 03:00, still Friday's window
    assert not w.allows(local(NY, 2026, 4, 18, 23))  # Saturday night
    assert not w.allows(local(NY, 2026, 4, 20, 3))  # Monday 03:00 belongs to Sunday's window
    assert w.allows(local(NY, 2026, 4, 21, 3))  # Tuesday 03:00, Monday's window
    assert w.refusal(local(NY, 2026, 4, 20, 3)) == (
        "the window open now began on Sunday in America/New_York, which is not an allowed day (allowed: Monday, "
        "Tuesday, Wednesday, Thursday, Friday)")


def test_days_without_hours_use_the_default_timezone():
    w = window(days=[1], default="Pacific/Auckland")
    assert w.timezone == "Pacific/Auckland"
    # Sunday 2026-03-08 20:00 UTC is Monday 09:00 in Auckland (NZDT, UTC+13)
    assert w.allows(utc(2026, 3, 8, 20))
    assert not window(days=[1]).allows(utc(2026, 3, 8, 20))  # still Sunday in UTC


@pytest.mark.parametrize(("zone", "instant", "weekday"), [
    ("Pacific/Auckland", utc(2026, 3, 9, 10, 59), 1),  # 23:59 Monday NZDT
    ("Pacific/Auckland", utc(2026, 3, 9, 11, 0), 2),  # 00:00 Tuesday NZDT
    ("Pacific/Auckland", utc(2026, 7, 6, 11, 59), 1),  # 23:59 Monday NZST (UTC+12, winter)
    ("Pacific/Auckland", utc(2026, 7, 6, 12, 0), 2),
    ("Asia/Kolkata", utc(2026, 3, 8, 18, 29), 7),  # 23:59 Sunday IST (UTC+5:30)
    ("Asia/Kolkata", utc(2026, 3, 8, 18, 30), 1),  # 00:00 Monday IST
    ("America/New_York", utc(2026, 3, 10, 3, 59), 1),  # 23:59 Monday EDT
    ("America/New_York", utc(2026, 3, 10, 4, 0), 2),
    ("Europe/Berlin", utc(2026, 3, 8, 22, 59), 7),  # 23:59 Sunday CET
    ("Europe/Berlin", utc(2026, 3, 8, 23, 0), 1),
])
def test_weekday_is_read_in_the_window_zone(zone, instant, weekday):
    assert window(0, 24, zone, days=[weekday]).allows(instant)
    assert not window(0, 24, zone, days=[w for w in range(1, 8) if w != weekday]).allows(instant)


# --- DST ------------------------------------------------------------------------------------------------


def test_new_york_spring_forward_2026_03_08():
    # 02:00 EST jumps to 03:00 EDT at 07:00 UTC; 02:xx never happens
    w = window(2, 3)
    assert not any(w.allows(utc(2026, 3, 8, 0) + dt.timedelta(minutes=m)) for m in range(0, 24 * 60, 5))
    assert window(1, 3).allows(utc(2026, 3, 8, 6, 59))  # 01:59 EST
    assert not window(1, 3).allows(utc(2026, 3, 8, 7, 0))  # 03:00 EDT
    # nine to five follows the wall clock: 9:00 is 14:00 UTC the day before, 13:00 UTC on the day
    assert window(9, 17).allows(utc(2026, 3, 7, 14)) and not window(9, 17).allows(utc(2026, 3, 7, 13, 59))
    assert window(9, 17).allows(utc(2026, 3, 8, 13)) and not window(9, 17).allows(utc(2026, 3, 8, 12, 59))
    assert window(9, 17).allows(utc(2026, 3, 8, 20, 59)) and not window(9, 17).allows(utc(2026, 3, 8, 21))


def test_new_york_fall_back_2026_11_01():
    # 02:00 EDT falls back to 01:00 EST at 06:00 UTC: 01:xx happens twice and both count
    w = window(1, 2)
    assert w.allows(local(NY, 2026, 11, 1, 1, 30, fold=0)) and w.allows(local(NY, 2026, 11, 1, 1, 30, fold=1))
    assert local(NY, 2026, 11, 1, 1, 30, fold=1) - local(NY, 2026, 11, 1, 1, 30, fold=0) == dt.timedelta(hours=1)
    inside = [m for m in range(0, 24 * 60) if w.allows(utc(2026, 11, 1, 0) + dt.timedelta(minutes=m))]
    assert len(inside) == 120  # two real hours
    assert window(9, 17).allows(utc(2026, 11, 1, 14)) and not window(9, 17).allows(utc(2026, 11, 1, 13, 59))
    assert window(9, 17).allows(utc(2026, 10, 31, 13)) and not window(9, 17).allows(utc(2026, 10, 31, 12, 59))


@pytest.mark.parametrize(("instant", "inside"), [
    (utc(2026, 3, 27, 7, 59), False), (utc(2026, 3, 27, 8, 0), True),  # CET, UTC+1
    (utc(2026, 3, 30, 6, 59), False), (utc(2026, 3, 30, 7, 0), True),  # CEST, UTC+2, after 2026-03-29
    (utc(2026, 10, 26, 7, 59), False), (utc(2026, 10, 26, 8, 0), True),  # CET again, after 2026-10-25
])
def test_berlin_across_both_dst_changes(instant, inside):
    assert window(9, 17, "Europe/Berlin").allows(instant) is inside


def test_wrapped_window_on_the_spring_forward_night_in_berlin():
    w = window(22, 6, "Europe/Berlin", days=[6])  # Saturday night into Sunday 2026-03-29
    assert w.allows(local(BERLIN, 2026, 3, 28, 22))
    assert w.allows(local(BERLIN, 2026, 3, 29, 5, 59))
    assert not w.allows(local(BERLIN, 2026, 3, 29, 6))
    hours = sum(w.allows(utc(2026, 3, 28, 12) + dt.timedelta(minutes=m)) for m in range(24 * 60)) / 60
    assert hours == 7  # the night is an hour short


# --- property: the rule equals an enumeration of allowed (weekday, hour) slots --------------------------


def allowed_slots(start, end, days):
    """Enumerate the (weekday, hour) pairs a window opens, each counted from the day it opens on."""
    days = days or range(1, 8)
    if start == end or (start, end) == (0, 24):
        return {(d, h) for d in days for h in range(24)}
    length = (end - start) % 24 or 24
    slots = set()
    for d in days:
        for k in range(length):
            hour = start + k
            slots.add((d if hour < 24 else d % 7 + 1, hour % 24))
    return slots


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 23), st.integers(0, 24), st.one_of(st.none(), st.sets(st.integers(1, 7), min_size=1)),
       st.sampled_from(["America/New_York", "Europe/Berlin", "Pacific/Auckland", "Asia/Kolkata", "UTC"]),
       st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC)))
def test_allows_equals_the_enumerated_slots(start, end, days, zone, instant):
    w = window(start, end, zone, sorted(days) if days else None)
    wall = instant.astimezone(ZoneInfo(zone))
    expected = (wall.isoweekday(), wall.hour) in allowed_slots(start, end, days)
    assert w.allows(instant) is expected
    assert (w.refusal(instant) is None) is expected
