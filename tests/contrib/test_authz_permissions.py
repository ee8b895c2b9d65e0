"""The DRF permission classes on the decision API: HasPermission, ResourcePermission, ResourceAction."""

from __future__ import annotations

import pytest
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from twig_auth.audit.models import AuditEvent
from twig_auth.authz import services as authz_services
from twig_auth.authz.matrix import Permission
from twig_auth.contrib.rest_framework.authz import (
    HasPermission,
    ResourceAction,
    ResourcePermission,
    least_role_with,
    require_object,
    visible,
)
from twig_auth.contrib.rest_framework.exceptions import DomainAPIException
from twig_auth.contrib.rest_framework.permissions import HasOrgRole, HasScope
from twig_auth.contrib.rest_framework.views import TwigAPIView
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import NotFound, PermissionDenied
from twig_auth.orgs.roles import Role
from twig_project.workspace import services
from twig_project.workspace.models import Agent

pytestmark = pytest.mark.django_db

SYSTEM = RequestContext.system()


def _request(method: str, user=None) -> Request:
    raw = getattr(APIRequestFactory(), method)("/api/x")
    from django.contrib.sessions.backends.db import SessionStore

    raw.session = SessionStore()
    if user is not None:
        force_authenticate(raw, user=user)
    view = APIView()
    request = view.initialize_request(raw)
    view.request = request
    return request


@pytest.fixture
def roles(org, owner, make_member):
    return {"super_admin": owner, "admin": make_member(org, "admin"), "manager": make_member(org, "manager"),
            "user": make_member(org, "user")}


@pytest.fixture
def agent(org) -> Agent:
    return services.create_agent(org=org, name="Support", context=SYSTEM)


def _grant(membership, action: str, agent: Agent | str) -> None:
    rid = agent if isinstance(agent, str) else agent.pk
    authz_services.grant_permission(org=membership.org, resource_type="agent", resource_id=rid, action=action,
                                    user=membership.user, context=SYSTEM)


def _denials() -> list[dict]:
    return list(AuditEvent.objects.filter(event="AUTHORIZATION_DENIED").order_by("timestamp", "id")
                .values_list("details", flat=True))


# --- HasPermission ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("permission, allowed", [
    (Permission.ORG_VIEW, {"super_admin", "admin", "manager", "user"}),
    (Permission.RESOURCES_CREATE, {"super_admin", "admin", "manager"}),
    (Permission.AUTHZ_EXPLAIN, {"super_admin", "admin"}),
    (Permission.ORG_BILLING, {"super_admin"}),
])
def test_has_permission_admits_the_roles_holding_it(roles, permission, allowed):
    check = HasPermission(permission)
    admitted = {r for r, m in roles.items() if check().has_permission(_request("get", m.user), None)}
    assert admitted == allowed


def test_refusal_names_the_least_role_and_is_audited(roles):
    check = HasPermission(Permission.GRANTS_MANAGE)()
    assert not check.has_permission(_request("post", roles["manager"].user), None)
    assert check.message == "This action needs the admin role or above (grants.manage permission)."
    assert _denials() == [{"permission": "grants.manage", "reason": check.message, "decidedBy": "role",
                           "role": "manager"}]
    assert least_role_with(Permission.ORG_DELETE) == Role.SUPER_ADMIN


def test_methods_limit_the_permission_and_others_only_need_membership(roles, make_user):
    create = HasPermission(Permission.RESOURCES_CREATE, methods={"post"})
    user = roles["user"].user
    assert create().has_permission(_request("get", user), None)
    assert not create().has_permission(_request("post", user), None)
    assert not create().has_permission(_request("get", make_user()), None)  # an outsider is still refused
    assert not create().has_permission(_request("get"), None)


def test_unknown_permission_fails_fast():
    with pytest.raises(ValueError):
        HasPermission("billing.everything")


# --- ResourcePermission --------------------------------------------------------------------------------------


def test_allowed_object_passes(roles, agent):
    _grant(roles["user"], "use", agent)
    request = _request("get", roles["user"].user)
    assert ResourcePermission().has_object_permission(request, None, agent)
    assert ResourceAction("use")().has_object_permission(_request("post", roles["user"].user), None, agent)
    assert _denials() == []


def test_hidden_object_is_not_found_and_audited(roles, agent):
    with pytest.raises(DomainAPIException) as hidden:
        ResourcePermission().has_object_permission(_request("patch", roles["user"].user), None, agent)
    assert isinstance(hidden.value.error, NotFound) and hidden.value.status_code == 404
    assert _denials()[0]["action"] == "edit" and _denials()[0]["resource"] == f"agent:{agent.pk}"
    assert not visible(_request("get", roles["user"].user), agent)


def test_visible_object_refused_with_the_decisions_reason(roles, agent):
    _grant(roles["user"], "view", agent)
    with pytest.raises(DomainAPIException) as refused:
        ResourcePermission().has_object_permission(_request("delete", roles["user"].user), None, agent)
    assert isinstance(refused.value.error, PermissionDenied) and refused.value.status_code == 403
    assert refused.value.detail == _denials()[-1]["reason"] and "manage" in refused.value.detail
    assert visible(_request("get", roles["user"].user), agent)


def test_an_action_held_without_view_is_refused_not_hidden(roles, agent):
    _grant(roles["manager"], "deploy", agent)  # deploy implies nothing, but who holds it knows the agent
    manager = roles["manager"].user
    assert ResourceAction("deploy")().has_object_permission(_request("post", manager), None, agent)
    services.update_agent(agent=agent, changes={"description": "x"}, context=RequestContext.system(actor=manager))
    agent.refresh_from_db()
    with pytest.raises(PermissionDenied) as refused:
        require_object(_request("post", manager), agent, "deploy")
    assert "last changed" in refused.value.detail


@pytest.mark.parametrize("method, action", [("GET", "view"), ("HEAD", "view"), ("PUT", "edit"), ("PATCH", "edit"),
                                            ("DELETE", "manage"), ("POST", None)])
def test_default_actions_per_method(method, action):
    assert ResourcePermission.actions.get(method) == action


def test_resource_action_builds_one_action_or_a_map():
    assert set(ResourceAction("process").actions.values()) == {"process"}
    mapped = ResourceAction({"get": "view", "delete": "edit"})
    assert mapped.actions == {"GET": "view", "DELETE": "edit"} and issubclass(mapped, ResourcePermission)


def test_methods_without_an_action_are_not_checked(roles, agent):
    assert ResourceAction({"GET": "view"})().has_object_permission(_request("post", roles["user"].user), None, agent)


# --- composition ---------------------------------------------------------------------------------------------


def test_composes_with_role_classes_and_drf_operators(roles, agent):
    either = HasOrgRole(Role.ADMIN) | HasPermission(Permission.RESOURCES_CREATE)
    both = HasOrgRole(Role.MANAGER) & ResourceAction("deploy")
    manager = roles["manager"].user
    assert either().has_permission(_request("get", manager), None)
    assert not either().has_permission(_request("get", roles["user"].user), None)
    assert both().has_permission(_request("post", manager), None)
    with pytest.raises(DomainAPIException) as refused:
        both().has_object_permission(_request("post", manager), None, agent)  # visible to a manager, no grant
    assert refused.value.status_code == 403


def test_scopes_run_first():
    class View(TwigAPIView):
        permission_classes = [HasPermission(Permission.GRANTS_MANAGE), ResourcePermission]

    checks: list[BasePermission] = View().get_permissions()
    assert isinstance(checks[0], HasScope)
    assert [type(c).__name__ for c in checks[1:]] == ["HasPermission_GRANTS_MANAGE", "ResourcePermission"]


def test_other_orgs_objects_are_hidden(roles, make_org, make_member):
    other = make_org("globex")
    theirs = services.create_agent(org=other, name="Theirs", context=SYSTEM)
    with pytest.raises(NotFound):
        require_object(_request("get", roles["super_admin"].user), theirs, "view")


def test_the_browsable_apis_form_probes_are_not_audited(roles):
    from rest_framework.request import clone_request

    probe = clone_request(_request("get", roles["user"].user), "POST")  # what the browsable API asks
    assert not HasPermission(Permission.RESOURCES_CREATE)().has_permission(probe, None)
    agent = services.create_agent(org=roles["user"].org, name="Support", context=SYSTEM)
    assert not ResourcePermission().has_object_permission(clone_request(probe, "DELETE"), None, agent)
    assert _denials() == []
