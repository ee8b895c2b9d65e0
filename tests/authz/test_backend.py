"""user.has_perm through AuthzBackend: org permissions with an org (or a resource), resource actions with the
resource, nothing without an object; the membership is looked up once per request."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_backends

from tests.authz import helpers_decisions as h
from twig_auth.authz.backends import AuthzBackend


@pytest.fixture
def member(org, owner, make_member):
    return make_member(org, "user")


def fresh_user(m):
    return type(m.user).objects.get(pk=m.user_id)


def test_installed_after_the_email_backend():
    backends = settings.AUTHENTICATION_BACKENDS
    assert backends.index("twig_auth.authz.backends.AuthzBackend") == \
        backends.index("twig_auth.passwords.backends.EmailBackend") + 1
    assert any(isinstance(b, AuthzBackend) for b in get_backends())


def test_org_permissions(org, owner, member, make_member, make_org):
    admin = make_member(org, "admin")
    a = h.agent(org)
    assert fresh_user(admin).has_perm("twig_auth.grants.manage", org)
    assert fresh_user(admin).has_perm("twig_auth.grants.manage", a)  # a resource stands for its org
    assert not fresh_user(member).has_perm("twig_auth.grants.manage", org)
    assert fresh_user(member).has_perm("twig_auth.org.view", org)
    assert fresh_user(owner).has_perm("twig_auth.org.billing", org)
    assert not fresh_user(admin).has_perm("twig_auth.org.billing", org)
    other = make_org("globex")
    assert not fresh_user(admin).has_perm("twig_auth.org.view", other)  # not a member there
    assert not fresh_user(admin).has_perm("twig_auth.no.such", org)
    assert not fresh_user(admin).has_perm("twig_auth.grants.manage")  # no object: not ours to answer


def test_resource_actions(org, owner, member, make_member):
    manager = make_member(org, "manager")
    a, b = h.agent(org), h.agent(org, created_by=member)
    s = h.data_source(org)
    h.grant(org, a, "use", to=member)
    u = fresh_user(member)
    assert u.has_perm("agent.use", a) and u.has_perm("agent.view", a) and not u.has_perm("agent.edit", a)
    assert u.has_perm("agent.manage", b)
    assert not u.has_perm("data_source.view", s)
    assert fresh_user(manager).has_perm("data_source.process", s)
    assert not u.has_perm("agent.use", s)  # the type must match the object
    assert not u.has_perm("agent.launch", a)  # unknown action
    assert not u.has_perm("workspace.view_agent", a)  # Django model permissions are not ours


def test_deploy_and_sod_through_has_perm(org, owner, member, make_member):
    author = make_member(org, "manager")
    a = h.agent(org, created_by=author)
    h.grant(org, "agent:*", "deploy", to=member)
    h.grant(org, "agent:*", "deploy", to=author)
    assert fresh_user(member).has_perm("agent.deploy", a)
    assert not fresh_user(author).has_perm("agent.deploy", a)


def test_outsiders_inactive_users_and_superusers(org, owner, member, make_member, make_org):
    a = h.agent(org)
    outsider = make_member(make_org("globex"), "super_admin")
    assert not fresh_user(outsider).has_perm("agent.view", a)
    u = fresh_user(owner)
    u.is_active = False
    assert not u.has_perm("agent.view", a)
    # Django answers True for an active superuser before any backend is asked (documented in backends.py)
    su = fresh_user(outsider)
    su.is_superuser = True
    assert su.has_perm("agent.view", a)


def test_membership_looked_up_once_per_request(org, owner, member, django_assert_num_queries):
    a, b = h.agent(org), h.agent(org)
    h.grant(org, "agent:*", "view", to=member)
    u = fresh_user(member)
    assert u.has_perm("agent.view", a)
    with django_assert_num_queries(0):
        assert u.has_perm("agent.view", b) and not u.has_perm("agent.edit", b)
        assert not u.has_perm("twig_auth.grants.manage", org)


def test_backend_authenticates_nobody(member):
    assert AuthzBackend().authenticate(None, email=member.user.email, password="x") is None
    assert AuthzBackend().has_module_perms(member.user, "workspace") is False
