"""The org MFA policy applied to a member: required or not, the grace deadline, and the one check every
entry point calls (pages, the Django admin, DRF with sessions, access tokens and API keys).

A member must use MFA when the org's ``mfa`` policy has ``requiredForAll``, or ``requiredForAdmins`` and
the member is an ``admin`` or ``super_admin``. ``Membership.mfa_required_since`` records when that first
applied (set by the receivers when a member is added, promoted or the policy is tightened, and lazily
otherwise); the grace period runs ``gracePeriodDays`` from it. A member with a confirmed device is done.

:func:`deadline` answers per request with no SQL in the common case: the policy comes from the per-process
org-document cache, members the policy does not cover return at once, and covered members cost one cache
``get`` (``twig:mfa:gate:<user>:<org>``, deleted whenever devices, roles or the policy change).

When Redis is unreachable (:mod:`twig_auth.core.outage`) the standing is computed from the database on every
call (never cached, so never stale), deletions that fail are skipped, and on recovery every gate entry is
dropped (:func:`reapply_since`): a device or role change made during the outage could not delete them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.db import transaction

from twig_auth.conf import app_settings
from twig_auth.core import clock, outage
from twig_auth.core.cache import UNAVAILABLE, attempt, strict
from twig_auth.exceptions import MfaEnrollmentRequired
from twig_auth.mfa.devices import has_mfa
from twig_auth.orgs.models import Membership
from twig_auth.orgs.policy import cached_effective, effective
from twig_auth.orgs.roles import Role, role_at_least

GATE_SECONDS = 300
NOT_REQUIRED = 0.0


def _cache() -> Any:
    return strict(caches[app_settings.REDIS_CACHE_ALIAS])


def gate_key(user_id: Any, org_id: Any) -> str:
    return f"twig:mfa:gate:{user_id}:{org_id}"


def applies(role: str, mfa_policy: dict[str, Any]) -> bool:
    """Does the org's ``mfa`` policy cover a member with ``role``?"""
    return bool(mfa_policy["requiredForAll"] or (mfa_policy["requiredForAdmins"] and role_at_least(role, Role.ADMIN)))


def roles_covered(mfa_policy: dict[str, Any]) -> list[str]:
    return [r for r in Role.values if applies(r, mfa_policy)]


@dataclass(frozen=True)
class Status:
    """A member's standing: ``required`` by policy, ``enrolled`` or not, and the grace ``deadline``."""

    required: bool
    enrolled: bool
    deadline: dt.datetime | None

    @property
    def blocked(self) -> bool:
        return self.required and not self.enrolled and self.deadline is not None and clock.now() >= self.deadline

    @property
    def in_grace(self) -> bool:
        return self.required and not self.enrolled and not self.blocked

    @property
    def days_left(self) -> int:
        if self.deadline is None:
            return 0
        return max(0, -(-int((self.deadline - clock.now()).total_seconds()) // 86400))


def status(membership: Membership) -> Status:
    """Compute a member's standing from the database (pages that show it; the cache fill). The policy is read
    from the org row itself, not the per-process cache, so a refill never stores a stale policy's answer."""
    mfa_policy = effective(membership.org)["mfa"]
    if not applies(membership.role, mfa_policy):
        return Status(False, has_mfa(membership.user_id), None)
    enrolled = has_mfa(membership.user_id)
    since = membership.mfa_required_since or mark_required(membership)
    return Status(True, enrolled, since + dt.timedelta(days=mfa_policy["gracePeriodDays"]))


def standing(role: str, mfa_policy: dict[str, Any], *, enrolled: bool, since: dt.datetime | None) -> Status:
    """:func:`status` from what the caller already loaded (pages listing many members): no query, no write. A
    covered member whose grace has not started yet (``since`` None) is counted from now."""
    if not applies(role, mfa_policy):
        return Status(False, enrolled, None)
    return Status(True, enrolled, (since or clock.now()) + dt.timedelta(days=mfa_policy["gracePeriodDays"]))


def mark_required(membership: Membership) -> dt.datetime:
    """Record now as when the requirement first applied to ``membership`` (unless already recorded)."""
    now = clock.now()
    Membership.objects.filter(pk=membership.pk, mfa_required_since__isnull=True).update(mfa_required_since=now)
    since = Membership.objects.filter(pk=membership.pk).values_list("mfa_required_since", flat=True).first()
    membership.mfa_required_since = since or now
    return membership.mfa_required_since


def deadline(user_id: Any, org_id: Any, role: str) -> float:
    """Return the Unix time after which the member is blocked, or 0 when they are not (covered and enrolled,
    or not covered). Cached; see the module docstring."""
    if not applies(role, cached_effective(org_id)["mfa"]):
        return NOT_REQUIRED
    key = gate_key(user_id, org_id)
    cache = _cache()
    value = attempt("MFA gate read", cache.get, key)
    if value is None or value is UNAVAILABLE:
        membership = Membership.objects.filter(user_id=user_id, org_id=org_id).select_related("org").first()
        if membership is None:
            return NOT_REQUIRED
        current = status(membership)
        value = current.deadline.timestamp() if current.required and not current.enrolled and current.deadline \
            else NOT_REQUIRED
        if outage.redis_available():
            attempt("MFA gate write", cache.set, key, value, GATE_SECONDS)
    return float(value)


def check(user_id: Any, org_id: Any, role: str) -> None:
    """Raise :class:`MfaEnrollmentRequired` when the member's grace period is over and they have no device."""
    until = deadline(user_id, org_id, role)
    if until and clock.now().timestamp() >= until:
        raise MfaEnrollmentRequired()


def forget_user(user_id: Any) -> None:
    """Drop the cached standing of ``user_id`` in every org (devices changed)."""
    org_ids = Membership.objects.filter(user_id=user_id).values_list("org_id", flat=True)
    attempt("MFA gate invalidation", _cache().delete_many, [gate_key(user_id, org_id) for org_id in org_ids])


def forget_member(membership: Membership) -> None:
    attempt("MFA gate invalidation", _cache().delete, gate_key(membership.user_id, membership.org_id))


def policy_changed(org: Any) -> None:
    """Start the grace period of members the tightened policy newly covers, and drop the org's cached standing."""
    mfa_policy = effective(org)["mfa"]
    members = Membership.objects.filter(org=org)
    members.filter(role__in=roles_covered(mfa_policy), mfa_required_since__isnull=True) \
        .update(mfa_required_since=clock.now())
    user_ids = list(members.values_list("user_id", flat=True))

    def forget() -> None:
        for start in range(0, len(user_ids), 500):
            if attempt("MFA gate invalidation", _cache().delete_many,
                       [gate_key(uid, org.pk) for uid in user_ids[start:start + 500]]) is UNAVAILABLE:
                return

    forget()
    transaction.on_commit(forget)  # and again once the new policy is visible to every other reader


def reapply_since(started: float) -> None:
    """Drop every cached standing (an outage's changes to devices, roles or policies are not tracked; the
    entries refill on use). Only a django-redis cache can fail, and it deletes by pattern."""
    cache = _cache()
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("twig:mfa:gate:*")


outage.on_recovery(reapply_since)
