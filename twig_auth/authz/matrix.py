"""The role matrix, declared once: what each organization role may do.

Two tables:

- :data:`ROLE_PERMISSIONS`: org-level permissions (:class:`Permission`) per role. Billing and deleting the org
  are ``super_admin`` only.
- :data:`ROLE_RESOURCE_ACTIONS`: actions a role holds on *every* resource of a type in its org, without a
  grant. ``user`` holds none: a user sees and uses only what was granted to them (or to their groups) and what
  they created themselves. Nobody holds a grant-only action such as ``deploy`` by role.

``docs/authorization.md`` prints both tables from here (:func:`matrix_markdown`), and a test keeps it in sync.
"""

from __future__ import annotations

from enum import StrEnum

from twig_auth.orgs.roles import Role


class Permission(StrEnum):
    ORG_VIEW = "org.view"
    ORG_SETTINGS = "org.settings"
    ORG_BILLING = "org.billing"
    ORG_DELETE = "org.delete"
    MEMBERS_VIEW = "members.view"
    MEMBERS_MANAGE = "members.manage"
    ROLES_ASSIGN = "roles.assign"
    GROUPS_MANAGE = "groups.manage"
    GRANTS_MANAGE = "grants.manage"
    POLICIES_MANAGE = "policies.manage"
    AUTHZ_EXPLAIN = "authz.explain"
    AUDIT_VIEW = "audit.view"
    API_KEYS_OWN = "api_keys.own"
    API_KEYS_MANAGE_ALL = "api_keys.manage_all"
    SESSIONS_MANAGE_MEMBERS = "sessions.manage_members"
    MFA_RESET = "mfa.reset"
    RESOURCES_CREATE = "resources.create"
    INTERACTIONS_VIEW_ALL = "interactions.view_all"


P = Permission
_USER = frozenset({P.ORG_VIEW, P.API_KEYS_OWN})
_MANAGER = _USER | {P.MEMBERS_VIEW, P.RESOURCES_CREATE, P.INTERACTIONS_VIEW_ALL}
_ADMIN = _MANAGER | {P.ORG_SETTINGS, P.MEMBERS_MANAGE, P.ROLES_ASSIGN, P.GROUPS_MANAGE, P.GRANTS_MANAGE,
                     P.POLICIES_MANAGE, P.AUTHZ_EXPLAIN, P.AUDIT_VIEW, P.API_KEYS_MANAGE_ALL,
                     P.SESSIONS_MANAGE_MEMBERS, P.MFA_RESET}
_SUPER_ADMIN = _ADMIN | {P.ORG_BILLING, P.ORG_DELETE}

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    Role.SUPER_ADMIN: _SUPER_ADMIN, Role.ADMIN: frozenset(_ADMIN), Role.MANAGER: frozenset(_MANAGER),
    Role.USER: _USER,
}

ROLE_RESOURCE_ACTIONS: dict[str, dict[str, frozenset[str]]] = {
    Role.SUPER_ADMIN: {"agent": frozenset({"manage"}), "data_source": frozenset({"connect", "edit", "process"}),
                       "group": frozenset({"admin"})},
    Role.ADMIN: {"agent": frozenset({"manage"}), "data_source": frozenset({"connect", "edit", "process"}),
                 "group": frozenset({"admin"})},
    Role.MANAGER: {"agent": frozenset({"edit"}), "data_source": frozenset({"connect", "edit", "process"})},
    Role.USER: {},
}

# What the creator of a resource holds on it (the owner rule), per type.
OWNER_ACTIONS: dict[str, frozenset[str]] = {
    "agent": frozenset({"manage"}),
    "data_source": frozenset({"connect", "edit", "process"}),
}


def has_permission(role: str, permission: Permission | str) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def role_actions(role: str, resource_type: str) -> frozenset[str]:
    """The actions ``role`` holds by role on every ``resource_type`` of its org (before implications)."""
    return ROLE_RESOURCE_ACTIONS.get(role, {}).get(resource_type, frozenset())
