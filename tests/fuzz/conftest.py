"""Fixtures of the schema fuzzing: a seeded org, its credentials, and the API served in-process over WSGI.

Requests go through Django's real WSGI handler (``django.core.handlers.wsgi.WSGIHandler``) in the test's
thread, so they see the test's database transaction; like Django's test client, the handler's
``close_old_connections`` receivers are unplugged meanwhile (they would close the connection in the middle
of the test's transaction).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections

from tests.conftest import PASSWORD, oathtool
from twig_auth.apikeys.services import issue_api_key
from twig_auth.core.context import RequestContext
from twig_auth.orgs.models import Membership, Organization
from twig_project.workspace import services
from twig_project.workspace.models import Agent, DataSource

# Every limit far above what a run sends: a 429 would hide what the operation does (the limits have their own
# tests in tests/ratelimit/). 429 stays a documented answer of every operation all the same.
UNLIMITED = "1000000/m"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # nothing listens: a model call the fuzzer triggers fails fast, locally


@pytest.fixture
def fuzz_settings(settings: Any) -> Any:
    settings.TWIG_AUTH = {
        **settings.TWIG_AUTH,
        "RATE_LIMITS": dict.fromkeys(("execute", "write", "read", "admin"), UNLIMITED),
        "LOGIN_IP_RATE": UNLIMITED, "LOGIN_ACCOUNT_RATE": UNLIMITED,
        "MFA_CODE_RATE": UNLIMITED, "MFA_ACCOUNT_RATE": UNLIMITED,
        "API_KEY_HASHER": "twig_auth.apikeys.hashers.HmacSha256KeyHasher",  # bcrypt per new key is slow here
    }
    settings.TWIG_LLM = {"openai": {"base_url": CLOSED_PORT_URL, "api_key": ""},
                         "anthropic": {"base_url": CLOSED_PORT_URL, "api_key": ""},
                         "timeout": 1, "connect_timeout": 1, "max_tokens": 64}
    return settings


@dataclass
class ServerErrors:
    """Tracebacks of the exceptions Django turned into 500 pages, for the failure report."""

    seen: list[str] = field(default_factory=list)

    def take(self) -> list[str]:
        out, self.seen = self.seen, []
        return out


@pytest.fixture
def wsgi_app(fuzz_settings: Any, db: None) -> Iterator[tuple[WSGIHandler, ServerErrors]]:
    """The reference project's WSGI application, served in the test's thread and transaction."""
    import traceback

    errors = ServerErrors()

    def remember(sender: Any, request: Any = None, **kwargs: Any) -> None:
        errors.seen.append("".join(traceback.format_exception(*sys.exc_info())))

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.got_request_exception.connect(remember)
    try:
        yield WSGIHandler(), errors
    finally:
        signals.got_request_exception.disconnect(remember)
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def schema(wsgi_app: tuple[WSGIHandler, ServerErrors]) -> Any:
    """/api/schema as schemathesis loads it, from the application itself."""
    import schemathesis

    return schemathesis.openapi.from_wsgi("/api/schema?format=json", wsgi_app[0])


FAQ = {"faq": {"refund": "Refunds take 5 business days."}, "fallback": "Ask a human."}


@dataclass
class Seed:
    """What the fuzzer acts on: an enterprise org, its owner (a super admin with an authenticator app), a
    manager, and objects whose ids the fuzzer may use in paths. ``ensure()`` brings back what a previous
    example deleted, revoked or rolled, so every example finds them."""

    org: Organization
    owner: Membership
    manager: Membership
    totp_secret: str
    admin_key: str  # the credential of the API-key run: never revoked or rolled by the fuzzer
    admin_key_id: str
    original_settings: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)

    def ensure(self) -> dict[str, str]:
        from twig_auth.apikeys.models import ApiKey
        from twig_auth.authz import services as authz_services
        from twig_auth.authz.models import Grant, Policy

        system = RequestContext.system()
        if not Agent.objects.filter(pk=self.ids.get("agent", "")).exists():
            self.ids["agent"] = services.create_agent(org=self.org, name="Support", config=FAQ, context=system).pk
        if not DataSource.objects.filter(pk=self.ids.get("source", "")).exists():
            self.ids["source"] = services.create_data_source(org=self.org, name="Help center", kind="website",
                                                             context=system).pk
        key = ApiKey.objects.filter(pk=self.ids.get("api_key", "")).first()
        if key is None or key.revoked_at is not None or key.expires_at is not None:
            self.ids["api_key"] = issue_api_key(creator=self.manager, name="victim", scopes=["read", "write"],
                                                environment="live")[0].pk
        if not Grant.objects.filter(pk=self.ids.get("grant", "")).exists():
            self.ids["grant"] = authz_services.grant_permission(
                org=self.org, resource_type="agent", resource_id=self.ids["agent"], action="use",
                user=self.manager.user, context=system).pk
        if not Policy.objects.filter(pk=self.ids.get("policy", "")).exists():
            self.ids["policy"] = authz_services.create_policy(
                org=self.org, name="Support hours", description="", enabled=True,
                document={"policy": {"resource": f"agent:{self.ids['agent']}", "action": "use", "effect": "allow",
                                     "conditions": [{"user.role": "manager"}]}}, context=system).pk
        return self.ids

    def fresh_refresh_token(self) -> str:
        """A new refresh token of the manager (a family of its own), for the refresh and revoke operations."""
        from twig_auth.tokens.services import issue_tokens

        return issue_tokens(user=self.manager.user, membership=self.manager,
                            context=RequestContext.system())["refresh_token"]

    def restore_settings(self) -> None:
        """Put back the org settings an example changed (an IP allowlist or enforced SSO would refuse every
        later request: behaviour the other tests cover, hiding what the remaining examples would show)."""
        from twig_auth.usersessions.policy import forget_policies

        self.org.refresh_from_db(fields=["settings"])
        if self.org.settings != self.original_settings:
            Organization.objects.filter(pk=self.org.pk).update(settings=self.original_settings)
            self.org.settings = self.original_settings
            forget_policies()


@pytest.fixture
def seed(fuzz_settings: Any, make_org: Callable[..., Organization], make_member: Callable[..., Membership],
         totp_device: Callable[..., Any]) -> Seed:
    org = make_org("fuzz", plan="enterprise")
    owner = make_member(org, "super_admin", email="owner@fuzz.test")
    manager = make_member(org, "manager", email="manager@fuzz.test")
    _, secret = totp_device(owner.user)
    key, plaintext = issue_api_key(creator=owner, name="fuzzer", scopes=["read", "write", "execute", "admin"],
                                   environment="live")
    seeded = Seed(org=org, owner=owner, manager=manager, totp_secret=secret, admin_key=plaintext,
                  admin_key_id=key.pk, original_settings=dict(org.settings or {}))
    seeded.ensure()
    return seeded


def access_token(app: WSGIHandler, seed: Seed) -> str:
    """An access token of the owner from ``POST /api/auth/token``, with a second factor (so step-up holds)."""
    from werkzeug.test import Client

    response = Client(app).post("/api/auth/token", json={
        "email": seed.owner.user.email, "password": PASSWORD, "otp": oathtool(seed.totp_secret), "org": "fuzz"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["access_token"]
