"""Access tokens carry the member's role: a role change, a removal or a deactivation ends the member's token
families."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from twig_auth.signals import member_deactivated, member_removed, role_changed
from twig_auth.tokens.services import revoke_member_tokens


@receiver(role_changed, dispatch_uid="twig_auth.tokens.role_changed")
@receiver(member_removed, dispatch_uid="twig_auth.tokens.member_removed")
@receiver(member_deactivated, dispatch_uid="twig_auth.tokens.member_deactivated")
def _membership_changed(sender: Any, membership: Any, **kwargs: Any) -> None:
    revoke_member_tokens(membership)
