"""Who may do what in the reference API: the decision API of :mod:`twig_auth.authz` (roles, ownership, grants,
policies, time windows, separation of duties), through the DRF classes of
:mod:`twig_auth.contrib.rest_framework.authz`.

| endpoint                                   | needs                                                          |
|--------------------------------------------|----------------------------------------------------------------|
| ``GET /api/agents``, ``/api/data-sources`` | lists only what the caller may ``view``                        |
| ``POST /api/agents``, ``/api/data-sources``| ``resources.create`` (manager+); the creator then owns it      |
| ``GET /api/agents/{id}``                   | ``view`` on the agent                                          |
| ``PUT``/``PATCH /api/agents/{id}``         | ``edit``                                                       |
| ``DELETE /api/agents/{id}``                | ``manage``                                                     |
| ``POST /api/agents/{id}/deploy``           | ``deploy`` (grant-only), and not its creator or last modifier  |
| ``GET /api/data-sources/{id}``             | ``view`` on the data source                                    |
| ``PATCH``/``DELETE /api/data-sources/{id}``| ``edit`` (data sources have no ``manage``)                     |
| ``POST /api/data-sources/{id}/sync``       | ``process``                                                    |
| ``POST /api/query``, ``/api/chat``         | ``use`` on the agent                                           |
| ``GET /api/interactions``                  | own; all with ``interactions.view_all`` (manager+)             |
| ``/api/org/settings``                      | ``org.settings`` (admin+)                                      |

Without a grant, roles hold (the role matrix, :mod:`twig_auth.authz.matrix`): admins and super admins
``manage`` every agent, managers ``edit`` every agent, and both ``connect``/``edit``/``process`` every data
source; a ``user`` holds nothing but what was granted to them or their groups. A creator holds ``manage`` on their
agent and ``connect``/``edit``/``process`` on their data source. Nobody holds ``deploy`` by role.

Refusals on one object: an object the caller may not even ``view`` answers 404 ``not_found``, the same as an
unknown id (existence does not leak; for ``/api/query`` and ``/api/chat`` it is the usual 400 naming ``agent``);
an object the caller sees but may not act on answers 403 ``permission_denied`` with the decision's reason. Both
write ``AUTHORIZATION_DENIED``. A member outside their own access window hears so (403) rather than 404.
"""

from __future__ import annotations

from django.db.models import QuerySet

from twig_auth.authz.decisions import has_permission
from twig_auth.authz.matrix import Permission
from twig_auth.contrib.rest_framework.authz import HasPermission, ResourceAction, ResourcePermission
from twig_auth.orgs.models import Membership
from twig_project.workspace.models import Interaction

CreateResources = HasPermission(Permission.RESOURCES_CREATE, methods={"POST"})
AgentAccess = ResourcePermission  # GET view, PUT/PATCH edit, DELETE manage
DataSourceAccess = ResourceAction({"GET": "view", "HEAD": "view", "OPTIONS": "view", "PATCH": "edit",
                                   "DELETE": "edit"})
DeployAccess = ResourceAction("deploy")
SyncAccess = ResourceAction("process")
OrgSettingsAccess = HasPermission(Permission.ORG_SETTINGS)


def sees_all_interactions(membership: Membership) -> bool:
    """Members holding ``interactions.view_all`` (managers and above) see every interaction of their org."""
    return has_permission(membership, Permission.INTERACTIONS_VIEW_ALL)


def visible_interactions(membership: Membership) -> QuerySet[Interaction]:
    """Return the interactions ``membership`` may list."""
    qs = Interaction.objects.of_org(membership.org_id)
    if not sees_all_interactions(membership):
        qs = qs.filter(user_id=membership.user_id)
    return qs
