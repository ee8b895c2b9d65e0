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


# --- "use my key": the local model provider and the org's keys -------------------------------------------------

PLATFORM_OPENAI_KEY = "sk-twig-platform-openai-0001"
PLATFORM_ANTHROPIC_KEY = "sk-ant-twig-platform-0002"
ORG_OPENAI_KEY = "sk-proj-acme-openai-secret-7f3abcd"
ORG_ANTHROPIC_KEY = "sk-ant-api03-acme-secret-9q8wxyz"
ORG_CUSTOM_KEY = "acme-custom-endpoint-secret-5566"


@pytest.fixture
def llm_peer(settings: Any) -> Any:
    """The local OpenAI/Anthropic wire-format server (tests/peers/llm_server.py) as Twig's providers, knowing
    Twig's platform keys and Acme's keys; short timeouts."""
    from tests.peers.llm_server import run_llm_peer

    with run_llm_peer(PLATFORM_OPENAI_KEY, PLATFORM_ANTHROPIC_KEY, ORG_OPENAI_KEY, ORG_ANTHROPIC_KEY,
                      ORG_CUSTOM_KEY) as peer:
        settings.TWIG_LLM = {"openai": {"base_url": peer.openai_url, "api_key": PLATFORM_OPENAI_KEY},
                             "anthropic": {"base_url": peer.anthropic_url, "api_key": PLATFORM_ANTHROPIC_KEY},
                             "timeout": 5, "connect_timeout": 2, "max_tokens": 512}
        yield peer


@pytest.fixture
def org_key(db: None) -> Callable[..., Any]:
    """``org_key(org, provider, secret=<Acme's key>, endpoint_url="")``: the org's external key, through the service."""
    from twig_auth.providerkeys.services import save_external_key

    defaults = {"openai": ORG_OPENAI_KEY, "anthropic": ORG_ANTHROPIC_KEY, "custom": ORG_CUSTOM_KEY}

    def make(org: Organization, provider: str, secret: str | None = None, endpoint_url: str = "") -> Any:
        return save_external_key(org=org, provider=provider, secret=secret or defaults[provider],
                                 endpoint_url=endpoint_url, context=RequestContext.system())

    return make
