"""Time-based access: when a member, group or grant may act.

The document (the contract's shape)::

    {"accessControl": {"allowedHours": {"start": 9, "end": 17, "timezone": "America/New_York"},
                       "allowedDays": [1, 2, 3, 4, 5]}}

Precisely:

- Hours are whole wall-clock hours in the window's time zone. ``start`` (0–23) is inclusive and ``end``
  (0–24) exclusive: 9–17 is 09:00:00 to 16:59:59. ``end`` 24 means "until midnight".
- ``start`` > ``end`` wraps past midnight: 22–6 is 22:00 to 05:59:59 the next morning.
- ``start`` == ``end`` (and 0–24) means all day.
- ``allowedDays`` are ISO weekdays (Monday = 1 … Sunday = 7) in the same time zone. For a window that
  wraps past midnight, the day that counts is the day the window *opened*: with 22–6 and days 1–5,
  Friday 23:00 and Saturday 03:00 are allowed (Friday's window), Monday 03:00 is not (Sunday's).
- The zone is ``allowedHours.timezone``, else the default passed by the caller (the org's). Local time
  comes from converting the UTC instant with ``zoneinfo``, so DST is handled: on a spring-forward day the
  skipped hour simply never occurs, and on a fall-back day both occurrences of the repeated hour count.
- Either part may be absent; an empty ``accessControl`` restricts nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

from twig_auth.authz.attributes import timezone_problem
from twig_auth.exceptions import InvalidInput

DAY_NAMES: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIELDS: Final = ("allowedHours", "allowedDays")
HOUR_FIELDS: Final = ("start", "end", "timezone")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A parsed ``accessControl`` document. ``start``/``end`` are None when hours are not restricted,
    ``days`` is None when days are not; ``timezone`` is the zone both are read in."""

    start: int | None
    end: int | None
    days: frozenset[int] | None
    timezone: str

    @property
    def all_day(self) -> bool:
        return self.start is None or self.end is None or self.start == self.end or (self.start, self.end) == (0, 24)

    def allows(self, now: dt.datetime) -> bool:
        """Return True when the UTC instant ``now`` (timezone-aware) falls inside the window."""
        return self.refusal(now) is None

    def refusal(self, now: dt.datetime) -> str | None:
        """Return why ``now`` is outside the window (a sentence naming the local time), or None when inside."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        local = now.astimezone(ZoneInfo(self.timezone))
        hour, weekday = local.hour, local.isoweekday()
        opened = weekday  # the weekday the open window began on
        if not self.all_day:
            start, end = self.start, self.end
            assert start is not None and end is not None
            if start < end:
                inside = start <= hour < end
            else:
                inside = hour >= start or hour < end
                if inside and hour < end:
                    opened = weekday - 1 or 7
            if not inside:
                return (f"outside the allowed hours {start:02d}:00–{end:02d}:00 {self.timezone} "
                        f"(it is {local:%H:%M} on {DAY_NAMES[weekday - 1]} there)")
        if self.days is not None and opened not in self.days:
            allowed = ", ".join(DAY_NAMES[d - 1] for d in sorted(self.days))
            if opened != weekday:
                return (f"the window open now began on {DAY_NAMES[opened - 1]} in {self.timezone}, which is not "
                        f"an allowed day (allowed: {allowed})")
            return (f"not an allowed day: it is {DAY_NAMES[weekday - 1]} {local:%H:%M} in {self.timezone} "
                    f"(allowed: {allowed})")
        return None

    def to_document(self) -> dict[str, Any]:
        """Return the normalized ``{"accessControl": …}`` document of this window."""
        body: dict[str, Any] = {}
        if self.start is not None:
            body["allowedHours"] = {"start": self.start, "end": self.end, "timezone": self.timezone}
        if self.days is not None:
            body["allowedDays"] = sorted(self.days)
        return {"accessControl": body}


def validate_access_control(document: Any) -> dict[str, Any]:
    """Check an ``{"accessControl": …}`` document and return it normalized (days sorted, duplicates
    dropped); raise :class:`InvalidInput` with dotted paths such as ``accessControl.allowedHours.end``."""
    errors: dict[str, list[str]] = {}
    if not isinstance(document, dict):
        raise InvalidInput({"non_field_errors": ['Expected a JSON object such as {"accessControl": {...}}.']})
    for key in document:
        if key != "accessControl":
            errors[str(key)[:64]] = ['Unknown field; the document holds one "accessControl" object.']
    body = document.get("accessControl")
    if not isinstance(body, dict):
        errors["accessControl"] = ["This field is required." if body is None else "Must be an object."]
        raise InvalidInput(errors)
    out: dict[str, Any] = {}
    for key in body:
        if key not in FIELDS:
            errors[f"accessControl.{str(key)[:64]}"] = ["Unknown field; use allowedHours and allowedDays."]
    if "allowedHours" in body:
        hours = _hours(body["allowedHours"], errors)
        if hours is not None:
            out["allowedHours"] = hours
    if "allowedDays" in body:
        days = body["allowedDays"]
        path = "accessControl.allowedDays"
        if not isinstance(days, list) or not days:
            errors[path] = ["Must be a non-empty list of ISO weekdays, 1 (Monday) to 7 (Sunday); leave it out to "
                            "allow every day."]
        elif any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7 for d in days):
            errors[path] = ["Days are ISO weekdays: whole numbers from 1 (Monday) to 7 (Sunday)."]
        else:
            out["allowedDays"] = sorted(set(days))
    if errors:
        raise InvalidInput(errors)
    return {"accessControl": out}


def _hours(hours: Any, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    path = "accessControl.allowedHours"
    if not isinstance(hours, dict):
        errors[path] = ['Must be an object such as {"start": 9, "end": 17, "timezone": "Europe/Berlin"}.']
        return None
    before = len(errors)
    for key in hours:
        if key not in HOUR_FIELDS:
            errors[f"{path}.{str(key)[:64]}"] = ["Unknown field; use start, end and timezone."]
    for key, hi in (("start", 23), ("end", 24)):
        v = hours.get(key)
        if v is None:
            errors[f"{path}.{key}"] = ["This field is required."]
        elif isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
            errors[f"{path}.{key}"] = [f"Must be a whole hour from 0 to {hi}."]
    if "timezone" in hours:
        problem = timezone_problem(hours["timezone"])
        if problem:
            errors[f"{path}.timezone"] = [problem]
    if len(errors) != before:
        return None
    out = {"start": hours["start"], "end": hours["end"]}
    if "timezone" in hours:
        out["timezone"] = hours["timezone"]
    return out


def parse_time_window(document: Any, *, default_timezone: str = "UTC") -> TimeWindow:
    """Validate an ``accessControl`` document and return its :class:`TimeWindow`; hours and days are read
    in ``allowedHours.timezone``, else ``default_timezone`` (the org's)."""
    body = validate_access_control(document)["accessControl"]
    hours = body.get("allowedHours")
    zone = (hours or {}).get("timezone", default_timezone)
    if timezone_problem(zone):
        raise InvalidInput({"timezone": [f"\"{str(zone)[:64]}\" is not a known time zone."]})
    days = body.get("allowedDays")
    return TimeWindow(start=hours["start"] if hours else None, end=hours["end"] if hours else None,
                      days=frozenset(days) if days is not None else None, timezone=zone)
