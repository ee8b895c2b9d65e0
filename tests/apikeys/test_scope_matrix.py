"""Every endpoint × method × each of the 15 non-empty scope sets: allowed (the endpoint's own success status) or
403 ``insufficient_scope`` naming the scope the contract requires, with nothing written.

The keys' creator is a super admin so the role never blocks (and holds a ``deploy`` grant, which no role holds);
only the scope decides.

Speed: this module issues 15+ keys per test, so it stores them with the HMAC-SHA256 hasher (the setting
``API_KEY_HASHER``) instead of bcrypt cost 12; scope checks do not depend on the hasher, and bcrypt itself
is covered by test_hashers.py and test_verification.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.services import issue_api_key
from twig_auth.authz import services as authz_services
from twig_auth.authz.models import Grant, Policy
from twig_auth.core.context import RequestContext
from twig_auth.orgs.models import Membership
from twig_project.workspace import services
from twig_project.workspace.models import Agent, DataSource, Interaction

from .conftest import HMAC_HASHER, bearer

SCOPES = ("read", "write", "execute", "admin")
SCOPE_SETS = [frozenset(c) for n in range(1, 5) for c in itertools.combinations(SCOPES, n)]
assert len(SCOPE_SETS) == 15


@pytest.fixture(autouse=True)
def _hmac_keys(settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_HASHER": HMAC_HASHER}


POLICY = {"resource": "agent:*", "action": "use", "effect": "allow", "conditions": [{"user.role": "manager"}]}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # may contain {agent}, {source}, {key}, {grant}, {policy}
    scope: str
    ok: int
    body: Any = None


ROUTES = [
    Route("GET", "/api/agents", "read", 200),
    Route("POST", "/api/agents", "write", 201, {"name": "New agent"}),
    Route("GET", "/api/agents/{agent}", "read", 200),
    Route("PUT", "/api/agents/{agent}", "write", 200,
          {"name": "Renamed", "description": "d", "instructions": "i", "config": {}}),
    Route("PATCH", "/api/agents/{agent}", "write", 200, {"name": "Patched"}),
    Route("DELETE", "/api/agents/{agent}", "write", 204),
    Route("POST", "/api/agents/{agent}/deploy", "write", 200),
    Route("GET", "/api/data-sources", "read", 200),
    Route("POST", "/api/data-sources", "write", 201, {"name": "Docs", "kind": "website"}),
    Route("GET", "/api/data-sources/{source}", "read", 200),
    Route("PATCH", "/api/data-sources/{source}", "write", 200, {"name": "Patched"}),
    Route("DELETE", "/api/data-sources/{source}", "write", 204),
    Route("POST", "/api/data-sources/{source}/sync", "write", 200),
    Route("GET", "/api/interactions", "read", 200),
    Route("POST", "/api/query", "execute", 200, {"agent": "{agent}", "question": "refund?"}),
    Route("POST", "/api/chat", "execute", 200,
          {"agent": "{agent}", "messages": [{"role": "user", "content": "refund?"}]}),
    Route("GET", "/api/org/settings", "admin", 200),
    Route("PATCH", "/api/org/settings", "admin", 200, {"timezone": "Europe/Paris"}),
    Route("GET", "/api/api-keys", "admin", 200),
    Route("POST", "/api/api-keys", "admin", 201, {"name": "made by a key", "scopes": ["read"], "environment": "live"}),
    Route("DELETE", "/api/api-keys/{key}", "admin", 204),
    Route("POST", "/api/api-keys/{key}/roll", "admin", 201, {"expires_in": 0}),
    Route("GET", "/api/api-keys/{key}/usage", "admin", 200),
    Route("GET", "/api/authz/explain?member=owner@acme.test&action=use&resource=agent:{agent}", "admin", 200),
    Route("GET", "/api/audit-events", "admin", 200),
    Route("GET", "/api/grants", "admin", 200),
    Route("POST", "/api/grants", "admin", 201,
          {"resource": "agent:{agent}", "action": "view", "user": "owner@acme.test"}),
    Route("DELETE", "/api/grants/{grant}", "admin", 204),
    Route("GET", "/api/policies", "admin", 200),
    Route("POST", "/api/policies", "admin", 201, {"name": "new {agent}", "policy": POLICY}),
    Route("GET", "/api/policies/{policy}", "admin", 200),
    Route("PUT", "/api/policies/{policy}", "admin", 200, {"name": "renamed {agent}", "policy": POLICY}),
    Route("DELETE", "/api/policies/{policy}", "admin", 204),
]


def test_the_matrix_covers_every_api_route():
    """A new route under /api must be added to the matrix above."""
    from django.urls import get_resolver

    def walk(patterns: Any, prefix: str = "") -> set[str]:
        found: set[str] = set()
        for p in patterns:
            route = prefix + str(p.pattern)
            found |= walk(p.url_patterns, route) if hasattr(p, "url_patterns") else {route}
        return found

    # /api/auth/* authenticate by password, refresh token or session, not by key scopes (see test_auth_routes_*)
    api = {r for r in walk(get_resolver().url_patterns) if r.startswith("api/") and not r.endswith("/")
           and not r.startswith(("api/schema", "api/docs", "api/auth/"))}
    normalized = {r.replace("<str:pk>", "{x}").replace("<str:id>", "{x}") for r in api}
    covered = {r.path[1:].split("?")[0].replace("{agent}", "{x}").replace("{source}", "{x}").replace("{key}", "{x}")
               .replace("{grant}", "{x}").replace("{policy}", "{x}") for r in ROUTES}
    assert normalized == covered


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def _counts() -> dict[str, int]:
    return {"agents": Agent.objects.count(), "sources": DataSource.objects.count(),
            "keys": ApiKey.objects.filter(revoked_at__isnull=True).count(),
            "interactions": Interaction.objects.count(), "grants": Grant.objects.count(),
            "policies": Policy.objects.count()}


@pytest.fixture
def fresh_ids(owner: Membership) -> Callable[[], dict[str, str]]:
    """New objects for every request, so a destructive call never meets one already deleted."""
    system = RequestContext.system()
    authz_services.grant_permission(org=owner.org, resource_type="agent", resource_id="*", action="deploy",
                                    user=owner.user, context=system)

    def make() -> dict[str, str]:
        agent = services.create_agent(org=owner.org, name="Support", config={"faq": {"refund": "5 days."}},
                                      context=system)
        source = services.create_data_source(org=owner.org, name="Help", kind="website", context=system)
        target, _ = issue_api_key(creator=owner, name="target", scopes=["read"], environment="live")
        grant = authz_services.grant_permission(org=owner.org, resource_type="agent", resource_id=agent.pk,
                                                action="use", user=owner.user, context=system)
        policy = authz_services.create_policy(org=owner.org, name=f"policy {agent.pk}",
                                              document={"policy": POLICY}, context=system)
        return {"agent": agent.pk, "source": source.pk, "key": target.pk, "grant": grant.pk, "policy": policy.pk}

    return make


def _call(client: Any, route: Route, ids: dict[str, str], plaintext: str) -> Any:
    kwargs: dict[str, Any] = bearer(plaintext)
    if route.body is not None:
        kwargs.update(data=_fill(route.body, ids), content_type="application/json")
    return getattr(client, route.method.lower())(route.path.format(**ids), **kwargs)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_scope_matrix(client, owner, fresh_ids, route):
    keys = {scopes: issue_api_key(creator=owner, name="k", scopes=sorted(scopes), environment="live")[1]
            for scopes in SCOPE_SETS}
    outcomes = {}
    for scopes, plaintext in keys.items():
        ids = fresh_ids()
        before = _counts()
        response = _call(client, route, ids, plaintext)
        allowed = route.scope in scopes or "admin" in scopes
        body = response.json() if response.content else None
        if allowed:
            assert response.status_code == route.ok, (sorted(scopes), body)
        else:
            assert response.status_code == 403, (sorted(scopes), body)
            assert body == {"detail": f"This API key needs the '{route.scope}' scope for this request.",
                            "code": "insufficient_scope", "required_scope": route.scope}
            assert _counts() == before, "a refused request wrote something"
        outcomes[",".join(sorted(scopes))] = response.status_code
    allowed_sets = sum(1 for s in SCOPE_SETS if route.scope in s or "admin" in s)
    assert sum(1 for code in outcomes.values() if code == route.ok) == allowed_sets, outcomes


def test_auth_routes_are_outside_the_scope_map(client, owner):
    """Token and logout endpoints take credentials, not key scopes: a read-only key gets no 403 there."""
    from twig_auth.apikeys.services import issue_api_key

    _, plaintext = issue_api_key(creator=owner, name="read", scopes=["read"], environment="live")
    response = client.delete("/api/auth/logout", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.status_code == 204
