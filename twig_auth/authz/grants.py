"""What a member holds through grants, and the time windows that gate them.

:func:`grants_for` is the one query for "the live grants of this member and of their groups". Time windows
(``access_control`` on the grant and on the group) are not SQL: :func:`window_refusal` checks them at
decision time, in the org's time zone unless the window names its own. :func:`~twig_auth.authz.members.cached_grants`
keeps a member's grants for the rest of the request.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from typing import Any

from django.db.models import Q

from twig_auth.authz.models import Grant
from twig_auth.authz.timewindow import TimeWindow, parse_time_window
from twig_auth.core import clock
from twig_auth.exceptions import InvalidInput
from twig_auth.orgs.models import GroupMembership, Membership


def grants_for(membership: Any, resource_type: str | None = None, *, now: dt.datetime | None = None,
               include_expired: bool = False) -> list[Grant]:
    """Return the grants of ``membership``'s user and of its groups in its org that have not expired at
    ``now`` (default: the clock; every grant with ``include_expired``), with ``group`` loaded. One query;
    windows are not checked here."""
    groups = GroupMembership.objects.filter(membership_id=membership.pk).values("group_id")
    qs = Grant.objects.all() if include_expired else Grant.objects.live(now or clock.now())
    qs = (qs.filter(org_id=membership.org_id)
          .filter(Q(user_id=membership.user_id) | Q(group_id__in=groups))
          .select_related("group").order_by("created_at", "id"))
    if resource_type is not None:
        qs = qs.filter(resource_type=resource_type)
    return list(qs)


def grants_of_members(org_id: Any, members: Any, group_ids: dict[Any, set[Any]], *,
                      now: dt.datetime | None = None) -> dict[Any, list[Grant]]:
    """:func:`grants_for` of many members of one org in one query: ``{membership pk: [live grants]}``, the
    member's own and their groups' (``group_ids``: membership pk -> the groups it is in), ``group`` loaded."""
    members = list(members)
    if len(members) <= 500:
        wanted_groups = set().union(*group_ids.values()) if group_ids else set()
        who = Q(user_id__in=[m.user_id for m in members]) | Q(group_id__in=wanted_groups)
    else:  # the whole org, rather than thousands of query parameters
        who = Q(user_id__in=Membership.objects.filter(org_id=org_id).values("user_id")) | Q(group__isnull=False)
    qs = (Grant.objects.live(now or clock.now()).filter(org_id=org_id).filter(who)
          .select_related("group").order_by("created_at", "id"))
    by_user: dict[Any, list[Grant]] = {}
    by_group: dict[Any, list[Grant]] = {}
    for g in qs:
        (by_group.setdefault(g.group_id, []) if g.group_id else by_user.setdefault(g.user_id, [])).append(g)
    out: dict[Any, list[Grant]] = {}
    for m in members:
        held = list(by_user.get(m.user_id, []))
        for gid in sorted(group_ids.get(m.pk, ())):
            held += by_group.get(gid, [])
        out[m.pk] = held
    return out


# --- time windows ---------------------------------------------------------------------------------------

class BrokenWindow:
    """A stored window that no longer validates: it allows nothing (fail closed)."""

    timezone = "UTC"

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def allows(self, now: dt.datetime) -> bool:
        return False

    def refusal(self, now: dt.datetime) -> str:
        return f"its time window is invalid ({self.problem})"


@lru_cache(maxsize=1024)
def _parse(document: str, default_timezone: str) -> TimeWindow | BrokenWindow | None:
    doc = json.loads(document)
    if not isinstance(doc, dict) or "accessControl" not in doc:
        doc = {"accessControl": doc}  # stored bare, as {"allowedHours": ..., "allowedDays": ...}
    if doc["accessControl"] in (None, {}):
        return None
    try:
        return parse_time_window(doc, default_timezone=default_timezone)
    except InvalidInput as exc:
        return BrokenWindow("; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in exc.errors.items()))


def window(access_control: Any, default_timezone: str) -> TimeWindow | BrokenWindow | None:
    """Return the window of an ``access_control`` value (``{"accessControl": {...}}`` or its body), or None
    when it restricts nothing. A value that does not validate gives a window that allows nothing."""
    if not access_control:
        return None
    return _parse(json.dumps(access_control, sort_keys=True), default_timezone)


def window_refusal(access_control: Any, now: dt.datetime, default_timezone: str) -> str | None:
    """Return why ``now`` is outside the window, or None when it is inside (or there is no window)."""
    w = window(access_control, default_timezone)
    return None if w is None else w.refusal(now)


def grant_refusal(grant: Grant, now: dt.datetime, default_timezone: str) -> str | None:
    """Return why ``grant`` does not apply at ``now`` (expired, outside its window or its group's), or None."""
    if grant.expires_at is not None and grant.expires_at <= now:
        return f"it expired at {grant.expires_at:%Y-%m-%d %H:%M} UTC"
    refusal = window_refusal(grant.access_control, now, default_timezone)
    if refusal:
        return refusal
    if grant.group_id is not None:
        refusal = window_refusal(grant.group.access_control, now, default_timezone)
        if refusal:
            return f'group "{grant.group.name}" is {refusal}'
    return None
