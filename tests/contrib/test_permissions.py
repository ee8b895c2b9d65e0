"""The DRF permission classes of twig_auth and the request's membership."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from twig_auth.contrib.rest_framework.permissions import (
    HasOrgRole,
    IsOrgAdmin,
    IsOrgManager,
    IsOrgMember,
    MembersReadManagersWrite,
    request_membership,
)
from twig_auth.orgs.roles import Role

pytestmark = pytest.mark.django_db


def _request(method: str, user=None, auth=None) -> Request:
    factory = APIRequestFactory()
    raw = getattr(factory, method)("/api/x")
    from django.contrib.sessions.backends.db import SessionStore

    raw.session = SessionStore()
    if user is not None:
        force_authenticate(raw, user=user, token=auth)
    view = APIView()
    request = view.initialize_request(raw)
    view.request = request
    return request


@pytest.fixture
def roles(org, owner, make_member):
    return {"super_admin": owner, "admin": make_member(org, "admin"), "manager": make_member(org, "manager"),
            "user": make_member(org, "user")}


@pytest.mark.parametrize("permission, allowed", [
    (IsOrgMember, {"super_admin", "admin", "manager", "user"}),
    (IsOrgManager, {"super_admin", "admin", "manager"}),
    (IsOrgAdmin, {"super_admin", "admin"}),
    (HasOrgRole(Role.SUPER_ADMIN), {"super_admin"}),
])
def test_role_classes_admit_the_role_and_above(roles, permission, allowed):
    admitted = {role for role, m in roles.items() if permission().has_permission(_request("post", m.user), None)}
    assert admitted == allowed


def test_method_scoped_role_lets_members_read(roles):
    user = roles["user"].user
    assert MembersReadManagersWrite().has_permission(_request("get", user), None)
    denied = MembersReadManagersWrite()
    assert not denied.has_permission(_request("delete", user), None)
    assert "manager" in denied.message
    assert HasOrgRole(Role.ADMIN, methods={"patch"})().has_permission(_request("get", user), None)
    assert not HasOrgRole(Role.ADMIN, methods={"patch"})().has_permission(_request("patch", user), None)


def test_anonymous_and_outsiders_are_refused(make_user):
    assert not IsOrgMember().has_permission(_request("get"), None)
    assert not IsOrgMember().has_permission(_request("get", make_user()), None)


def test_membership_on_request_auth_wins(roles, make_org, make_member):
    """Token and API-key authenticators bind a request to one org by handing over its membership."""
    other = make_org("globex")
    elsewhere = make_member(other, "admin", email="x@globex.test")
    from twig_auth.orgs import services

    in_acme = services.add_member(org=roles["user"].org, user=elsewhere.user, role="manager")
    request = _request("get", elsewhere.user, auth=SimpleNamespace(membership=elsewhere))
    assert request_membership(request) == elsewhere
    plain = _request("get", elsewhere.user)
    assert request_membership(plain) == in_acme  # session fallback: the first org by name


def test_membership_of_another_user_is_ignored(roles):
    request = _request("get", roles["user"].user, auth=SimpleNamespace(membership=roles["admin"]))
    assert request_membership(request) is None


def test_unknown_role_fails_fast():
    with pytest.raises(ValueError):
        HasOrgRole("overlord")
