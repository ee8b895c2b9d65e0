"""Who may do what in the reference API, in one table (resource grants refine this in a later step).

| resource                                   | read        | write             |
|--------------------------------------------|-------------|-------------------|
| agents, data sources                       | any member  | manager and above |
| deploy an agent, sync a data source        |             | manager and above |
| interactions                               | own (managers and above: all) |  |
| query, chat                                |             | any member        |
| org settings                               | admin+      | admin and above   |
"""

from __future__ import annotations

from django.db.models import QuerySet

from twig_auth.contrib.rest_framework.permissions import (
    IsOrgAdmin,
    IsOrgManager,
    IsOrgMember,
    MembersReadManagersWrite,
)
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import Role, role_at_least
from twig_project.workspace.models import Interaction

AgentAccess = MembersReadManagersWrite
DataSourceAccess = MembersReadManagersWrite
DeployAccess = IsOrgManager
SyncAccess = IsOrgManager
AskAccess = IsOrgMember
InteractionAccess = IsOrgMember
OrgSettingsAccess = IsOrgAdmin


def sees_all_interactions(membership: Membership) -> bool:
    """Managers and above see every interaction of their org; others only their own."""
    return role_at_least(membership.role, Role.MANAGER)


def visible_interactions(membership: Membership) -> QuerySet[Interaction]:
    """Return the interactions ``membership`` may list."""
    qs = Interaction.objects.of_org(membership.org_id)
    if not sees_all_interactions(membership):
        qs = qs.filter(user_id=membership.user_id)
    return qs
