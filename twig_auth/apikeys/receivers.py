"""Keep cached key verifications in step with their creators' memberships."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from twig_auth.apikeys import verification
from twig_auth.apikeys.models import ApiKey
from twig_auth.signals import member_deactivated, member_reactivated, member_removed, role_changed


@receiver(role_changed, dispatch_uid="twig_auth.apikeys.role_changed")
@receiver(member_removed, dispatch_uid="twig_auth.apikeys.member_removed")
@receiver(member_deactivated, dispatch_uid="twig_auth.apikeys.member_deactivated")
@receiver(member_reactivated, dispatch_uid="twig_auth.apikeys.member_reactivated")  # drops remembered refusals
def _creator_changed(sender: Any, membership: Any, **kwargs: Any) -> None:
    # Now, so the next request already re-checks; and after commit, so a verification that read the
    # old row meanwhile cannot leave a stale entry behind.
    key_ids = list(ApiKey.objects.filter(created_by_id=membership.pk).values_list("key_id", flat=True))
    verification.invalidate(key_ids)
    transaction.on_commit(lambda: verification.invalidate(key_ids))
