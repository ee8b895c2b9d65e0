"""The access review of an org: every member with role, groups, grants, MFA standing, activity and API keys,
with what needs attention flagged. A constant number of queries whatever the number of members (about a
dozen: members, group links, grants, resource names per type, devices, recovery codes, keys, activity).

Flags:

- key ``rotate``: older than ``ACCESS_REVIEW_KEY_ROTATE_DAYS`` (90);
- key ``delete``: not used for ``ACCESS_REVIEW_KEY_UNUSED_DAYS`` (90), or never used and older than
  :data:`NEVER_USED_GRACE_DAYS` (a key created this morning is not a finding);
- member ``mfa``: the org requires MFA of them and they have no second factor (in grace or blocked);
- member ``inactive``: the org deactivates inactive members and this one is past the limit (the next
  ``twig_deactivate_inactive`` run deactivates them);
- member ``deactivated``.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.scopes import Scope
from twig_auth.authz.forms import type_label
from twig_auth.authz.grants import grants_of_members
from twig_auth.authz.models import Grant
from twig_auth.authz.pages import _names as resource_names
from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.mfa import enforcement, recovery
from twig_auth.mfa.devices import methods_by_user
from twig_auth.orgs import policy
from twig_auth.orgs.models import GroupMembership, Membership, Organization
from twig_auth.reviews.activity import Activity, activity_of

NEVER_USED_GRACE_DAYS = 7
FEW = 500  # up to this many members, related rows are fetched by member; above it, for the whole org
METHOD_LABELS = {"totp": "Authenticator app", "sms": "Text message"}


@dataclass(frozen=True)
class KeyReview:
    key: ApiKey
    age_days: int
    flags: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def scopes(self) -> list[str]:
        return [s for s in self.key.scopes if s in Scope.values]


@dataclass(frozen=True)
class GrantReview:
    grant: Grant
    resource: str  # "Agent “Support bot”", "All agents"
    via_group: str  # the group's name, "" for a direct grant


@dataclass
class MemberReview:
    membership: Membership
    email: str
    groups: list[tuple[str, str]] = field(default_factory=list)  # (group name, group role)
    grants: list[GrantReview] = field(default_factory=list)
    mfa_methods: list[str] = field(default_factory=list)
    recovery_codes: int = 0
    mfa: enforcement.Status | None = None
    activity: Activity | None = None
    inactive_days: int = 0
    deactivates_in: int | None = None  # days until the inactivity policy deactivates them (None: policy off)
    keys: list[KeyReview] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @property
    def mfa_labels(self) -> list[str]:
        return [METHOD_LABELS.get(m, m) for m in self.mfa_methods]


def _days(later: dt.datetime, earlier: dt.datetime) -> int:
    return max(0, (later - earlier).days)


def review_key(key: ApiKey, now: dt.datetime) -> KeyReview:
    """Flag one key ``rotate`` (old) and/or ``delete`` (unused)."""
    s = app_settings
    age = _days(now, key.created_at)
    flags, reasons = [], []
    if age >= s.ACCESS_REVIEW_KEY_ROTATE_DAYS:
        flags.append("rotate")
        reasons.append(f"older than {s.ACCESS_REVIEW_KEY_ROTATE_DAYS} days")
    if key.last_used_at is None:
        if age >= NEVER_USED_GRACE_DAYS:
            flags.append("delete")
            reasons.append("never used")
    elif _days(now, key.last_used_at) >= s.ACCESS_REVIEW_KEY_UNUSED_DAYS:
        flags.append("delete")
        reasons.append(f"unused for {_days(now, key.last_used_at)} days")
    return KeyReview(key, age, tuple(flags), tuple(reasons))


def members_of(org: Organization) -> Any:
    """The org's memberships in review order (by email), with users loaded."""
    return Membership.objects.filter(org=org).select_related("user").order_by("user__email", "pk")


def review(org: Organization, members: Iterable[Membership], *, now: dt.datetime | None = None) -> list[MemberReview]:
    """Return the review rows of ``members`` (memberships of ``org``, users loaded)."""
    now = now or clock.now()
    members = list(members)
    if not members:
        return []
    few = len(members) <= FEW
    ids = [m.pk for m in members]
    users: Any = [m.user_id for m in members] if few else Membership.objects.filter(org=org).values("user_id")
    document = policy.effective(org)
    email_field = members[0].user.get_email_field_name()
    rows = {m.pk: MemberReview(membership=m, email=str(getattr(m.user, email_field, "") or "")) for m in members}

    links = GroupMembership.objects.filter(membership__org=org).select_related("group").order_by("group__name")
    if few:
        links = links.filter(membership_id__in=ids)
    group_ids: dict[int, set[int]] = {}
    for link in links:
        if link.membership_id in rows:
            rows[link.membership_id].groups.append((link.group.name, link.role))
            group_ids.setdefault(link.membership_id, set()).add(link.group_id)

    grants = grants_of_members(org.pk, members, group_ids, now=now)
    names = resource_names({(g.resource_type, g.resource_id) for held in grants.values() for g in held
                            if g.resource_id != "*"}, org)
    for pk, held in grants.items():
        for g in held:
            if g.resource_id == "*":
                label = f"All {type_label(g.resource_type, plural=True).lower()}"
            else:
                name = names.get((g.resource_type, g.resource_id))
                label = f"{type_label(g.resource_type)} “{name}”" if name else f"{g.resource_type}:{g.resource_id}"
            rows[pk].grants.append(GrantReview(g, label, g.group.name if g.group_id else ""))

    methods = methods_by_user(users)
    codes = recovery.remaining_by_user(users)
    keys = ApiKey.objects.active().filter(org=org).order_by("created_at", "pk")
    keys = keys.filter(created_by_id__in=ids) if few else keys.filter(created_by__isnull=False)
    for key in keys:
        if key.created_by_id in rows and key.state(now) == "active":
            rows[key.created_by_id].keys.append(review_key(key, now))
    activity = activity_of(org.pk, members)
    limit = document.get("accessReview", {}).get("deactivateAfterDays") or 0

    for m in members:
        row = rows[m.pk]
        row.mfa_methods = methods.get(m.user_id, [])
        row.recovery_codes = codes.get(m.user_id, 0)
        row.mfa = enforcement.standing(m.role, document["mfa"], enrolled=bool(row.mfa_methods),
                                       since=m.mfa_required_since)
        row.activity = activity[m.pk]
        row.inactive_days = _days(now, row.activity.inactive_since)
        if m.is_deactivated:
            row.flags.append("deactivated")
        elif limit and not m.has_role("super_admin"):
            row.deactivates_in = max(0, limit - row.inactive_days)
            if row.deactivates_in == 0:
                row.flags.append("inactive")
        if row.mfa.required and not row.mfa.enrolled:
            row.flags.append("mfa")
        if any(k.flags for k in row.keys):
            row.flags.append("keys")
    return [rows[m.pk] for m in members]


# --- CSV ------------------------------------------------------------------------------------------------------

CSV_COLUMNS = ["email", "role", "status", "deactivated_at", "groups", "grants", "mfa_methods", "recovery_codes",
               "mfa_required", "mfa_deadline", "last_login", "last_active", "inactive_days", "api_keys", "flags"]


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ (or a tab / CR) gets a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_record(row: MemberReview) -> list[str]:
    m = row.membership
    status = row.mfa
    keys = []
    for k in row.keys:
        used = _when(k.key.last_used_at) or "never"
        flags = f" [{', '.join(k.flags)}: {'; '.join(k.reasons)}]" if k.flags else ""
        keys.append(f"{k.key.name} ({k.key.prefix}) scopes={'+'.join(k.scopes)} last_used={used} "
                    f"age_days={k.age_days}{flags}")
    grants = [f"{g.grant.action} on {g.resource}" + (f" until {_when(g.grant.expires_at)}" if g.grant.expires_at
                                                     else "") + (f" via group {g.via_group}" if g.via_group else "")
              for g in row.grants]
    values = [
        row.email, m.role, "deactivated" if m.is_deactivated else "active", _when(m.deactivated_at),
        " | ".join(f"{name} ({role})" for name, role in row.groups), " | ".join(grants),
        " | ".join(row.mfa_methods), row.recovery_codes,
        "yes" if status and status.required else "no",
        _when(status.deadline) if status and status.required and not status.enrolled else "",
        _when(m.last_login_at), _when(row.activity.last_active if row.activity else None), row.inactive_days,
        " | ".join(keys), " ".join(row.flags),
    ]
    return [safe_cell(v) for v in values]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[MemberReview]) -> Iterator[str]:
    """The CSV text of ``rows``, line by line (for a streaming response), header first."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in rows:
        yield writer.writerow(csv_record(row))
