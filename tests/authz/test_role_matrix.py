"""Every role x every resource type x every action, as owner and not, and every org-level permission, against
a table written out here by hand; the table must equal what matrix.py declares (so a change there is a
deliberate change here and in the docs)."""

from __future__ import annotations

import itertools

import pytest

from tests.authz import helpers_decisions as h
from twig_auth.authz import registry
from twig_auth.authz.decisions import GRANT_ONLY_ACTIONS, authorize, authorized, has_permission
from twig_auth.authz.matrix import OWNER_ACTIONS, ROLE_PERMISSIONS, Permission, role_actions
from twig_auth.orgs.models import Group, Membership
from twig_project.workspace.models import Agent, DataSource

ROLES = ("super_admin", "admin", "manager", "user")

# (role, type) -> actions allowed on a resource somebody else created
BY_ROLE = {
    ("super_admin", "agent"): {"view", "use", "edit", "manage"},
    ("admin", "agent"): {"view", "use", "edit", "manage"},
    ("manager", "agent"): {"view", "use", "edit"},
    ("user", "agent"): set(),
    ("super_admin", "data_source"): {"view", "connect", "edit", "process"},
    ("admin", "data_source"): {"view", "connect", "edit", "process"},
    ("manager", "data_source"): {"view", "connect", "edit", "process"},
    ("user", "data_source"): set(),
    ("super_admin", "group"): {"member", "manager", "admin"},
    ("admin", "group"): {"member", "manager", "admin"},
    ("manager", "group"): set(),
    ("user", "group"): set(),
}
# type -> actions the creator holds on their own resource, whatever their role
BY_OWNER = {"agent": {"view", "use", "edit", "manage"}, "data_source": {"view", "connect", "edit", "process"},
            "group": set()}
MODELS = {"agent": Agent, "data_source": DataSource, "group": Group}

P = Permission
BY_PERMISSION = {
    "user": {P.ORG_VIEW, P.API_KEYS_OWN},
    "manager": {P.ORG_VIEW, P.API_KEYS_OWN, P.MEMBERS_VIEW, P.RESOURCES_CREATE, P.INTERACTIONS_VIEW_ALL},
}
BY_PERMISSION["admin"] = set(Permission) - {P.ORG_BILLING, P.ORG_DELETE}
BY_PERMISSION["super_admin"] = set(Permission)


def expected(role: str, type_name: str, action: str, is_owner: bool) -> bool:
    return action in BY_ROLE[role, type_name] or (is_owner and action in BY_OWNER[type_name])


def test_the_table_here_is_the_table_in_matrix_py():
    for (role, type_name), actions in BY_ROLE.items():
        rtype = registry.get(type_name)
        assert rtype is not None
        derived = {a for a in rtype.actions if a not in GRANT_ONLY_ACTIONS
                   and any(rtype.grants(held, a) for held in role_actions(role, type_name))}
        assert derived == actions, (role, type_name)
        owned = {a for a in rtype.actions if a not in GRANT_ONLY_ACTIONS and rtype.owner_field
                 and any(rtype.grants(held, a) for held in OWNER_ACTIONS.get(type_name, ()))}
        assert owned == BY_OWNER[type_name]
    assert {r: set(p) for r, p in ROLE_PERMISSIONS.items()} == BY_PERMISSION
    assert set(registry.all_types()) == set(MODELS)


@pytest.fixture
def world(org, owner, make_member):
    members = {"super_admin": owner, **{r: make_member(org, r) for r in ROLES[1:]}}
    made = {}
    for role, m in members.items():
        made["agent", role] = h.agent(org, created_by=m)
        made["data_source", role] = h.data_source(org, created_by=m)
    made["agent", None] = h.agent(org)
    made["data_source", None] = h.data_source(org)
    made["group", None] = h.group(org, "Everyone")
    return members, made


@pytest.mark.parametrize("role", ROLES)
def test_every_role_type_action_as_owner_and_not(world, role):
    members, made = world
    actor = members[role]
    checked = 0
    for type_name, rtype in registry.all_types().items():
        mine = made.get((type_name, role))
        theirs = made[type_name, None]
        for action, (obj, is_owner) in itertools.product(rtype.actions, ((theirs, False), (mine, True))):
            if obj is None:
                continue
            want = expected(role, type_name, action, is_owner)
            d = authorize(actor, action, obj)
            assert d.allowed is want, (role, type_name, action, is_owner, d.reason)
            if want:
                assert d.decided_by == ("owner" if is_owner and action not in BY_ROLE[role, type_name] else "role")
            else:
                assert d.decided_by in ("default", "sod")
            checked += 1
        for action in rtype.actions:
            visible = set(authorized(actor, action, MODELS[type_name].objects.all()))
            rows = MODELS[type_name].objects.all()
            assert visible == {o for o in rows if authorize(actor, action, o).allowed}, (role, type_name, action)
    assert checked == 2 * 9 + 3  # agent and data source actions as owner and not, group actions once


def test_nobody_deploys_by_role_or_ownership(world):
    members, made = world
    for role, actor in members.items():
        for obj in (made["agent", None], made["agent", role]):
            assert not authorize(actor, "deploy", obj).allowed


@pytest.mark.parametrize("role", ROLES)
def test_every_org_permission(world, role):
    members, _ = world
    actor = members[role]
    for permission in Permission:
        assert has_permission(actor, permission) is (permission in BY_PERMISSION[role]), (role, permission)
        assert has_permission(actor, permission.value) is (permission in BY_PERMISSION[role])


def test_only_super_admin_touches_billing_and_deletes_the_org(world):
    members, _ = world
    for role, actor in members.items():
        assert has_permission(actor, P.ORG_BILLING) is (role == "super_admin")
        assert has_permission(actor, P.ORG_DELETE) is (role == "super_admin")


def test_a_role_change_takes_effect_on_the_next_request(world, org):
    members, made = world
    m = Membership.objects.get(pk=members["user"].pk)
    assert not authorize(m, "view", made["agent", None]).allowed
    m.role = "manager"
    m.save()
    assert authorize(Membership.objects.get(pk=m.pk), "edit", made["agent", None]).allowed
