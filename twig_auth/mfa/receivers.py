"""Keep each member's MFA standing current: grace starts when the policy first covers them; caches drop."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from twig_auth import signals
from twig_auth.mfa import enforcement
from twig_auth.orgs.models import Membership
from twig_auth.orgs.policy import cached_effective


def _note(membership: Membership) -> None:
    if enforcement.applies(membership.role, cached_effective(membership.org_id)["mfa"]):
        enforcement.mark_required(membership)
    enforcement.forget_member(membership)


@receiver(signals.member_added, dispatch_uid="twig_auth.mfa.member_added")
def _member_added(sender: Any, membership: Membership, **kwargs: Any) -> None:
    _note(membership)


@receiver(signals.role_changed, dispatch_uid="twig_auth.mfa.role_changed")
def _role_changed(sender: Any, membership: Membership, **kwargs: Any) -> None:
    _note(membership)


@receiver(signals.member_removed, dispatch_uid="twig_auth.mfa.member_removed")
def _member_removed(sender: Any, membership: Membership, **kwargs: Any) -> None:
    enforcement.forget_member(membership)


@receiver(signals.org_settings_changed, dispatch_uid="twig_auth.mfa.policy_changed")
def _policy_changed(sender: Any, org: Any, changed: list[str], **kwargs: Any) -> None:
    if "mfa" in changed:
        enforcement.policy_changed(org)
