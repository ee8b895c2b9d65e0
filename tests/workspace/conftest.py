"""Fixtures of the reference API tests: members of every role, JSON clients, agent and source factories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from twig_auth.authz import services as authz_services
from twig_auth.authz.decisions import resource_key
from twig_auth.authz.models import Grant
from twig_auth.core.context import RequestContext
from twig_auth.mfa import stepup
from twig_auth.orgs.models import Group, Membership, Organization
from twig_project.workspace import services
from twig_project.workspace.models import Agent, DataSource

from .helpers import JsonClient

FAQ_CONFIG = {"faq": {"refund": "Refunds take 5 business days.", "refund policy": "See our refund policy page."},
              "fallback": "Ask a human."}


@pytest.fixture
def members(org: Organization, owner: Membership, make_member: Callable[..., Membership]) -> dict[str, Membership]:
    """One member of each role in ``org`` (acme)."""
    return {
        "super_admin": owner,
        "admin": make_member(org, "admin", email="admin@acme.test"),
        "manager": make_member(org, "manager", email="manager@acme.test"),
        "user": make_member(org, "user", email="user@acme.test"),
    }


@pytest.fixture
def api_as(members: dict[str, Membership]) -> Callable[..., JsonClient]:
    """Return a JSON client signed in as the member with ``role`` (or as the given membership)."""

    def make(who: str | Membership) -> JsonClient:
        membership = members[who] if isinstance(who, str) else who
        client = Client()
        client.force_login(membership.user, backend="twig_auth.passwords.backends.EmailBackend")
        session = client.session
        stepup.mark_verified(session)  # as after a login with a code: sensitive calls need no step-up here
        session.save()
        return JsonClient(client, membership)

    return make


@pytest.fixture
def anon() -> JsonClient:
    return JsonClient(Client())


@pytest.fixture
def make_agent(db: None) -> Callable[..., Agent]:
    def make(org: Organization, name: str = "Support", config: dict[str, Any] | None = None, **kw: Any) -> Agent:
        return services.create_agent(org=org, name=name, config=FAQ_CONFIG if config is None else config,
                                     context=RequestContext.system(), **kw)

    return make


@pytest.fixture
def make_source(db: None) -> Callable[..., DataSource]:
    def make(org: Organization, name: str = "Help center", kind: str = "website", **kw: Any) -> DataSource:
        return services.create_data_source(org=org, name=name, kind=kind, context=RequestContext.system(), **kw)

    return make


@pytest.fixture
def other_org(make_org: Callable[..., Organization], make_member: Callable[..., Membership]) -> Organization:
    """A second org (free plan) with its own owner."""
    other = make_org("globex", plan="free")
    make_member(other, "super_admin", email="owner@globex.test")
    return other


@pytest.fixture
def grant(db: None) -> Callable[..., Grant]:
    """``grant(member_or_group, action, resource, **kw)``: a grant made by an operator through the service;
    ``resource`` is a model instance or ``"type:id"`` (``"agent:*"``)."""

    def make(who: Membership | Group, action: str, resource: Any, **kw: Any) -> Grant:
        key = resource if isinstance(resource, str) else resource_key(resource)
        rtype, _, rid = key.partition(":")
        grantee = {"group": who} if isinstance(who, Group) else {"user": who.user}
        return authz_services.grant_permission(org=who.org, resource_type=rtype, resource_id=rid, action=action,
                                               context=RequestContext.system(), **grantee, **kw)

    return make
