"""Deactivate members who have been inactive for the org's ``accessReview.deactivateAfterDays``.

Deactivation is per org and reversible (:func:`twig_auth.orgs.services.deactivate_member`): the member keeps
their groups, grants and API keys, but no session, access token or API key acts as them until an admin
reactivates them. Super admins are never deactivated automatically (the org must keep one who can sign in).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.orgs import policy
from twig_auth.orgs.models import Membership, Organization
from twig_auth.orgs.roles import Role
from twig_auth.orgs.services import deactivate_member
from twig_auth.reviews.activity import activity_of


@dataclass(frozen=True)
class Candidate:
    membership: Membership
    email: str
    inactive_since: dt.datetime
    inactive_days: int


def deactivation_days(org: Organization) -> int:
    """The org's inactivity limit in days; 0 when deactivation is off."""
    return int(policy.effective(org).get("accessReview", {}).get("deactivateAfterDays") or 0)


def inactive_members(org: Organization, *, now: dt.datetime | None = None) -> list[Candidate]:
    """Members of ``org`` inactive longer than its limit (none when it is off), super admins and already
    deactivated members excluded. Four queries whatever the org's size."""
    days = deactivation_days(org)
    if not days:
        return []
    members = list(Membership.objects.active().filter(org=org).exclude(role=Role.SUPER_ADMIN)
                   .select_related("user").order_by("pk"))
    return inactive_members_among(org, members, days=days, now=now or clock.now())


def deactivate_inactive(org: Organization, *, dry_run: bool = False, now: dt.datetime | None = None,
                        context: RequestContext | None = None) -> list[Candidate]:
    """Deactivate (unless ``dry_run``) every member :func:`inactive_members` finds; return them. Each member is
    re-checked under a row lock in its own transaction, so a sign-in that lands meanwhile keeps them active."""
    now = now or clock.now()
    candidates = inactive_members(org, now=now)
    if dry_run:
        return candidates
    context = context or RequestContext.system()
    days = deactivation_days(org)
    done = []
    for c in candidates:
        with transaction.atomic():
            row = (Membership.objects.select_for_update(of=("self",)).select_related("user")
                   .filter(pk=c.membership.pk).first())
            if row is None or row.deactivated_at is not None or row.role == Role.SUPER_ADMIN:
                continue
            still = inactive_members_among(org, [row], days=days, now=now)
            if not still:
                continue
            deactivate_member(membership=row, reason="inactive", context=context,
                              details={"inactiveDays": still[0].inactive_days, "limitDays": days,
                                       "inactiveSince": still[0].inactive_since.isoformat()})
        done.append(still[0])
    return done


def inactive_members_among(org: Organization, members: list[Membership], *, days: int,
                           now: dt.datetime) -> list[Candidate]:
    """The members of ``members`` inactive for more than ``days`` (fresh activity, read now)."""
    activity = activity_of(org.pk, members)
    cutoff = now - dt.timedelta(days=days)
    out = []
    for m in members:
        since = activity[m.pk].inactive_since
        if since <= cutoff:
            user = m.user
            out.append(Candidate(m, str(getattr(user, user.get_email_field_name(), "") or ""), since,
                                 (now - since).days))
    return out
