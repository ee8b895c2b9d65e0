"""Reading an org's audit events: filters, cursor pages (newest first), and JSON Lines / CSV streams.

Shared by ``GET /api/audit-events`` (:mod:`twig_auth.contrib.rest_framework.audit`) and the Access logs page
(:mod:`twig_auth.netaccess.views`), so both accept the same filters and answer the same records
(:meth:`AuditEvent.as_export`: the contract's field names plus ``id``, ``seq``, ``prevHash``, ``hash``).

Filters (each optional; bad values raise :class:`~twig_auth.exceptions.InvalidInput` naming the field):
``event`` (repeatable, or comma-separated), ``user`` (a user id or an email), ``ip``, ``since`` (inclusive) and
``until`` (exclusive) as ISO 8601 dates or date-times (UTC when no offset), ``target_type``, ``target_id``.
Pages are ordered ``(timestamp, id)`` newest first and continue from an opaque ``cursor`` (keyset pagination: no
``COUNT``, no ``OFFSET``, stable while events are appended).
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.exceptions import InvalidInput
from twig_auth.netaccess.allowlist import normalize_ip

MAX_PAGE = 200
DEFAULT_PAGE = 50
STREAM_BATCH = 1000
FORMATS = ("json", "jsonl", "csv")
MAX_TEXT = 254
CSV_COLUMNS = ("id", "timestamp", "event", "userId", "email", "ipAddress", "userAgent", "mfaUsed", "sessionId",
               "org", "targetType", "targetId", "targetRepr", "details", "seq", "prevHash", "hash")
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
EVENT_NAMES = frozenset(Event.values)


@dataclass
class Filters:
    events: list[str] = field(default_factory=list)
    user: str = ""
    ip: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    target_type: str = ""
    target_id: str = ""

    def apply(self, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        if self.events:
            queryset = queryset.filter(event__in=self.events)
        if self.user:
            if "@" in self.user:
                queryset = queryset.filter(email__iexact=self.user)
            else:
                queryset = queryset.filter(user_id=self.user)
        if self.ip:
            queryset = queryset.filter(ip_address=self.ip)
        if self.since is not None:
            queryset = queryset.filter(timestamp__gte=self.since)
        if self.until is not None:
            queryset = queryset.filter(timestamp__lt=self.until)
        if self.target_type:
            queryset = queryset.filter(target_type=self.target_type)
        if self.target_id:
            queryset = queryset.filter(target_id=self.target_id)
        return queryset


def _values(params: Mapping[str, Any], name: str) -> list[str]:
    """Every value of ``name``: a QueryDict's list, or a plain mapping's value (a list, or one value)."""
    getlist = getattr(params, "getlist", None)
    if getlist is not None:
        return [str(v) for v in getlist(name)]
    value = params.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _one(params: Mapping[str, Any], name: str, errors: dict[str, list[str]]) -> str:
    values = _values(params, name)
    if len(values) > 1:
        errors[name] = ["Give this filter once."]
        return ""
    value = values[0].strip() if values else ""
    if len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        errors[name] = [f"At most {MAX_TEXT} characters, no control characters."]
        return ""
    return value


def _moment(value: str, name: str, errors: dict[str, list[str]], *, end_of_day: bool = False) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = parse_date(value) if len(value) == 10 else None  # a bare day (parse_datetime would take it too)
        if day is not None:
            moment = dt.datetime.combine(day + dt.timedelta(days=1) if end_of_day else day, dt.time())
        else:
            moment = parse_datetime(value)
    except (ValueError, OverflowError):  # not a date; or 9999-12-31 as an included last day
        moment = None
    if moment is not None:
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
        try:
            moment = moment.astimezone(dt.UTC)  # e.g. 9999-12-31T23:00-05:00 is past the last representable day
        except OverflowError:
            moment = None
    if moment is None:
        errors[name] = ["Use an ISO 8601 date or date and time, such as 2025-01-31 or 2025-01-31T12:00:00Z."]
    return moment


def parse_filters(params: Mapping[str, Any], *, inclusive_until_date: bool = False) -> Filters:
    """Read the filters from query parameters; raise :class:`InvalidInput` naming every bad one.

    ``inclusive_until_date``: a bare date as ``until`` includes that day (the page's "to" date); otherwise
    ``until`` is exclusive (the API).
    """
    errors: dict[str, list[str]] = {}
    events: list[str] = []
    for raw in _values(params, "event"):
        for name in (part.strip().upper() for part in raw.split(",")):
            if not name:
                continue
            if name not in EVENT_NAMES:
                errors["event"] = [f"Unknown event {name[:60]!r}; see docs/audit.md for the names."]
                break
            if name not in events:
                events.append(name)
    filters = Filters(events=events)
    user = _one(params, "user", errors)
    if user and "@" not in user:
        try:
            user = str(get_user_model()._meta.pk.to_python(user))
        except (ValidationError, ValueError, TypeError):
            errors["user"] = ["Give a user id or an email address."]
            user = ""
        if user and get_user_model()._meta.pk.get_internal_type() in ("AutoField", "BigAutoField") \
                and not -2**63 < int(user) < 2**63:
            errors["user"] = ["Give a user id or an email address."]
            user = ""
    filters.user = user
    ip = _one(params, "ip", errors)
    if ip:
        normalized = normalize_ip(ip)
        if normalized is None:
            errors["ip"] = ["Enter a single IPv4 or IPv6 address."]
        filters.ip = normalized or ""
    filters.since = _moment(_one(params, "since", errors), "since", errors)
    filters.until = _moment(_one(params, "until", errors), "until", errors, end_of_day=inclusive_until_date)
    if filters.since and filters.until and filters.since >= filters.until:
        errors.setdefault("until", ["Must be later than since."])
    for name in ("target_type", "target_id"):
        value = _one(params, name, errors)
        if len(value) > 64:
            errors[name] = ["At most 64 characters."]
        setattr(filters, name, value[:64])
    if errors:
        raise InvalidInput(errors)
    return filters


def org_events(org_id: Any, filters: Filters) -> QuerySet[AuditEvent]:
    """The org's events matching ``filters``, newest first."""
    return filters.apply(AuditEvent.objects.filter(org_id=org_id)).order_by("-timestamp", "-id")


# --- cursors -----------------------------------------------------------------------------------------------


def encode_cursor(event: AuditEvent) -> str:
    raw = json.dumps([event.timestamp.astimezone(dt.UTC).isoformat(), event.pk], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str, name: str = "cursor") -> tuple[dt.datetime, int]:
    """Return the ``(timestamp, id)`` a cursor points at; :class:`InvalidInput` naming ``name`` if malformed."""
    try:
        if len(value) > 200:
            raise ValueError
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        stamp, pk = json.loads(raw)
        moment = dt.datetime.fromisoformat(stamp)
        if moment.tzinfo is None or isinstance(pk, bool) or not isinstance(pk, int) or not 0 < pk < 2**63:
            raise ValueError
        moment = moment.astimezone(dt.UTC)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput({name: ["Invalid cursor: use the one from the previous page's next link."]}) from None
    return moment, pk


def older_than(queryset: QuerySet[AuditEvent], moment: dt.datetime, pk: int) -> QuerySet[AuditEvent]:
    return queryset.filter(Q(timestamp__lt=moment) | Q(timestamp=moment, id__lt=pk))


def newer_than(queryset: QuerySet[AuditEvent], moment: dt.datetime, pk: int) -> QuerySet[AuditEvent]:
    return queryset.filter(Q(timestamp__gt=moment) | Q(timestamp=moment, id__gt=pk))


def page_after(queryset: QuerySet[AuditEvent], cursor: str | None, limit: int) -> tuple[list[AuditEvent], str | None]:
    """One page, newest first, after ``cursor``; and the cursor of the next (older) page, or None at the end."""
    if cursor:
        queryset = older_than(queryset, *decode_cursor(cursor))
    rows = list(queryset.order_by("-timestamp", "-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)


def page_before(queryset: QuerySet[AuditEvent], cursor: str, limit: int) -> tuple[list[AuditEvent], bool]:
    """The page just newer than ``cursor``, newest first; and whether there are newer events still."""
    rows = list(newer_than(queryset, *decode_cursor(cursor, "before")).order_by("timestamp", "id")[: limit + 1])
    more = len(rows) > limit
    return list(reversed(rows[:limit])), more


def limit_from(params: Mapping[str, Any]) -> int:
    values = _values(params, "limit")
    if not values:
        return DEFAULT_PAGE
    value = values[-1].strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidInput({"limit": [f"A whole number from 1 to {MAX_PAGE}."]})
    return int(value)


def format_from(params: Mapping[str, Any], default: str = "json") -> str:
    values = _values(params, "format")
    value = (values[-1].strip().lower() if values else "") or default
    if value not in FORMATS:
        raise InvalidInput({"format": ["Use json, jsonl or csv."]})
    return value


# --- streams -----------------------------------------------------------------------------------------------


def every_event(queryset: QuerySet[AuditEvent], batch: int = STREAM_BATCH) -> Iterator[AuditEvent]:
    """Every event of ``queryset``, newest first, read in keyset batches (memory stays flat)."""
    ordered = queryset.order_by("-timestamp", "-id")
    rows = list(ordered[:batch])
    while rows:
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]
        rows = list(older_than(ordered, last.timestamp, last.pk)[:batch])


def jsonl_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    for event in events:
        yield json.dumps(event.as_export(), ensure_ascii=False, separators=(",", ":")) + "\n"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is prefixed with ``'`` (OWASP CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_row(event: AuditEvent) -> list[str]:
    r = event.as_export()
    target = r["target"]
    values = [r["id"], r["timestamp"], r["event"], r["userId"], r["email"], r["ipAddress"], r["userAgent"],
              r["mfaUsed"], r["sessionId"], r["org"], target["type"], target["id"], target["repr"],
              json.dumps(r["details"], ensure_ascii=False, sort_keys=True), r["seq"], r["prevHash"], r["hash"]]
    return [_cell(v) for v in values]


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def take(row: Iterable[Any]) -> str:
        writer.writerow(row)
        out = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return out

    yield take(CSV_COLUMNS)
    for event in events:
        yield take(csv_row(event))


def stream(queryset: QuerySet[AuditEvent], fmt: str) -> Iterator[str]:
    events = every_event(queryset)
    return jsonl_lines(events) if fmt == "jsonl" else csv_lines(events)


def filename(org: Any, fmt: str, now: dt.datetime) -> str:
    slug = "".join(c for c in str(getattr(org, "slug", "org")) if c.isalnum() or c in "-_") or "org"
    return f"audit-events-{slug}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.{fmt}"
