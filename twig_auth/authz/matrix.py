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


def matrix_markdown() -> str:
    """Return the role matrix as Markdown tables: org-level permissions per role, the actions each role and a
    resource's creator hold on every registered resource type, and the types with their actions.

    ``docs/authorization.md`` holds exactly this text between ``<!-- matrix:start -->`` and
    ``<!-- matrix:end -->``; a test keeps the two in sync (regenerate with
    ``python -c "from twig_auth.authz.matrix import matrix_markdown; print(matrix_markdown())"`` after
    ``django.setup()``).
    """
    from twig_auth.authz import registry

    about = {
        P.ORG_VIEW: "see the organization and work in it", P.ORG_SETTINGS: "read and change the org settings",
        P.ORG_BILLING: "billing", P.ORG_DELETE: "delete the organization", P.MEMBERS_VIEW: "list the members",
        P.MEMBERS_MANAGE: "add and remove members", P.ROLES_ASSIGN: "change members' roles",
        P.GROUPS_MANAGE: "manage every group", P.GRANTS_MANAGE: "grant and revoke resource permissions",
        P.POLICIES_MANAGE: "write ABAC policies and separation-of-duties rules",
        P.AUTHZ_EXPLAIN: "ask why a member may or may not act (explain)", P.AUDIT_VIEW: "read the audit log",
        P.API_KEYS_OWN: "create and manage their own API keys", P.API_KEYS_MANAGE_ALL: "see and revoke every API key",
        P.SESSIONS_MANAGE_MEMBERS: "see and end members' sessions", P.MFA_RESET: "reset a member's second factor",
        P.RESOURCES_CREATE: "create resources (agents, data sources)",
        P.INTERACTIONS_VIEW_ALL: "see every member's interactions",
    }
    roles = [Role.USER, Role.MANAGER, Role.ADMIN, Role.SUPER_ADMIN]
    head = " | ".join(f"`{r.value}`" for r in roles)
    rule = "|".join([":-:"] * len(roles))
    lines = ["### Organization permissions", "", f"| permission | what it allows | {head} |", f"|---|---|{rule}|"]
    for perm in Permission:
        marks = " | ".join("✓" if perm in ROLE_PERMISSIONS[r] else "" for r in roles)
        lines.append(f"| `{perm.value}` | {about.get(perm, '')} | {marks} |")

    types = sorted(registry.all_types().values(), key=lambda t: t.name)

    def held(actions: frozenset[str], rtype: registry.ResourceType) -> str:
        closed: set[str] = set()
        for action in actions:
            closed |= rtype.closure.get(action, frozenset({action}))
        return ", ".join(f"`{a}`" for a in rtype.actions if a in closed) or "—"

    lines += ["", "### Resource actions held without a grant", "",
              "On *every* resource of the type in the organization, by role (implied actions included), and on a "
              "resource the member created (owner). Anything else needs a grant.", "",
              f"| resource type | {head} | owner |", f"|---|{'|'.join(['---'] * (len(roles) + 1))}|"]
    for rtype in types:
        cells = [held(role_actions(r, rtype.name), rtype) for r in roles]
        owner = held(OWNER_ACTIONS.get(rtype.name, frozenset()), rtype)
        lines.append(f"| `{rtype.name}` | {' | '.join(cells)} | {owner} |")

    lines += ["", "### Resource types", "", "| resource type | actions | implies | grant-only |", "|---|---|---|---|"]
    for rtype in types:
        implied = [f"`{a}` → {', '.join(f'`{b}`' for b in rtype.actions if b in rtype.closure[a] and b != a)}"
                   for a in rtype.actions if len(rtype.closure[a]) > 1]
        by_role = set().union(*(role_actions(r, rtype.name) for r in roles), OWNER_ACTIONS.get(rtype.name, ()))
        reachable = set().union(*(rtype.closure[a] for a in by_role if a in rtype.closure))
        only = [f"`{a}`" for a in rtype.actions if a not in reachable]
        lines.append(f"| `{rtype.name}` | {', '.join(f'`{a}`' for a in rtype.actions)} | "
                     f"{'; '.join(implied) or '—'} | {', '.join(only) or '—'} |")
    return "\n".join(lines) + "\n"
