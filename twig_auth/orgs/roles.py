"""The four organization roles and the three group roles, ordered from most to least powerful."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    SUPER_ADMIN = "super_admin", "Super admin"
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    USER = "user", "User"


class GroupRole(models.TextChoices):
    MEMBER = "member", "Member"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"


class Plan(models.TextChoices):
    FREE = "free", "Free"
    TEAM = "team", "Team"
    ENTERPRISE = "enterprise", "Enterprise"


ROLE_RANK: dict[str, int] = {Role.USER: 1, Role.MANAGER: 2, Role.ADMIN: 3, Role.SUPER_ADMIN: 4}
GROUP_ROLE_RANK: dict[str, int] = {GroupRole.MEMBER: 1, GroupRole.MANAGER: 2, GroupRole.ADMIN: 3}
DEFAULT_ROLE = Role.USER


def role_at_least(role: str, minimum: str) -> bool:
    """Return True when ``role`` is ``minimum`` or above it."""
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]
