"""The membership a credential acts as, known without a query (API keys, access tokens)."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Protocol

from twig_auth.orgs.roles import role_at_least


class MemberPrincipal(Protocol):
    membership_id: int
    org_id: int
    user_id: Any
    role: str


class PrincipalMembership:
    """Role and ids as the credential carries them; ``org`` loads lazily (one query, on first use)."""

    def __init__(self, principal: MemberPrincipal) -> None:
        self.pk = self.id = principal.membership_id
        self.org_id = principal.org_id
        self.user_id = principal.user_id
        self.role = principal.role

    def has_role(self, minimum: str) -> bool:
        return role_at_least(self.role, minimum)

    @cached_property
    def org(self) -> Any:
        from twig_auth.orgs.models import Organization

        return Organization.objects.get(pk=self.org_id)
