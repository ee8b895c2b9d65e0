"""Connector tests against a real oidc-provider (node, tests/peers/oidc/server.mjs, AUTO_LOGIN): Google Drive and
Slack data sources whose provider endpoints point at it. server.mjs prints ``GRANT <grant_type>`` for every
token-endpoint grant and ``GRANT_ERROR <grant_type> <error>`` for every refused one, so tests count refreshes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlparse

import pytest
import requests
from django.test import Client

from tests.sso.oidc_peer import run_op
from twig_auth.connectors.models import OAuthToken
from twig_auth.core.context import RequestContext
from twig_auth.mfa import stepup
from twig_auth.orgs.models import Membership, Organization
from twig_project.workspace import services
from twig_project.workspace.models import DataSource

HOST = "127.0.0.1:8000"  # the Django host the OP's redirect URIs name (the test client answers, no server)
BASE = f"http://{HOST}"
CLIENT_ID, CLIENT_SECRET = "test-client", "test-secret"


@dataclass
class Op:
    """A running oidc-provider and what it logged."""

    issuer: str
    log: Path

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.startswith(prefix)]

    def grants(self, grant_type: str) -> int:
        """Successful token-endpoint grants of ``grant_type`` so far."""
        return len(self.lines(f"GRANT {grant_type}"))

    def refused(self, grant_type: str) -> int:
        return len(self.lines(f"GRANT_ERROR {grant_type}"))

    # --- the provider's endpoints, called as the client (test-client, client_secret_basic) ---------------
    def post(self, path: str, data: dict[str, str], client: str = CLIENT_ID) -> requests.Response:
        if client == "test-client-post":  # registered with client_secret_post
            return requests.post(self.issuer + path, data={**data, "client_id": client,
                                                           "client_secret": CLIENT_SECRET}, timeout=10)
        return requests.post(self.issuer + path, data=data, auth=(client, CLIENT_SECRET), timeout=10)

    def active(self, token: str) -> bool:
        """RFC 7662 introspection: does the provider still honour ``token``?"""
        response = self.post("/token/introspection", {"token": token})
        assert response.status_code == 200, response.text
        return bool(response.json()["active"])

    def refresh(self, refresh_token: str) -> requests.Response:
        return self.post("/token", {"grant_type": "refresh_token", "refresh_token": refresh_token})

    def revoke(self, token: str, client: str = CLIENT_ID) -> None:
        """Revoke ``token`` as ``client`` (the Slack provider of these tests is ``test-client-post``)."""
        assert self.post("/token/revocation", {"token": token}, client).status_code == 200

    def userinfo(self, access_token: str) -> requests.Response:
        return requests.get(self.issuer + "/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=10)


@pytest.fixture(scope="session")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    """oidc-provider that keeps refresh tokens (a confidential client's default)."""
    log = tmp_path_factory.mktemp("connectors-op") / "op.log"
    with run_op(log, BASE) as issuer:
        yield Op(issuer, log)


@pytest.fixture(scope="session")
def rotating_op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Op]:
    """oidc-provider that rotates the refresh token on every refresh (and revokes the grant on reuse)."""
    log = tmp_path_factory.mktemp("connectors-op-rt") / "op.log"
    with run_op(log, BASE, extra_env={"ROTATE_RT": "1"}) as issuer:
        yield Op(issuer, log)


def provider_settings(issuer: str, **overrides: Any) -> dict[str, Any]:
    """CONNECTOR_PROVIDERS entries for google_drive (client_secret_basic) and slack (client_secret_post)."""
    common = {"authorization_endpoint": f"{issuer}/auth", "token_endpoint": f"{issuer}/token",
              "revocation_endpoint": f"{issuer}/token/revocation", "api_probe_url": f"{issuer}/me",
              "scopes": ["openid", "email"], "client_secret": CLIENT_SECRET}
    return {
        "google_drive": {**common, "client_id": CLIENT_ID, "token_endpoint_auth_method": "client_secret_basic",
                         **overrides},
        "slack": {**common, "client_id": "test-client-post", "token_endpoint_auth_method": "client_secret_post",
                  "scope_separator": " ", **overrides},
    }


@pytest.fixture
def use_op(settings: Any) -> Callable[..., None]:
    """``use_op(op, **overrides)``: point the google_drive and slack providers at ``op``."""

    def point(target: Op, **overrides: Any) -> None:
        settings.TWIG_AUTH = {**settings.TWIG_AUTH, "CONNECTOR_PROVIDERS": provider_settings(target.issuer,
                                                                                              **overrides)}

    return point


@pytest.fixture
def configured(op: Op, use_op: Callable[..., None]) -> Op:
    use_op(op)
    return op


@pytest.fixture
def manager(org: Organization, owner: Membership, make_member: Callable[..., Membership]) -> Membership:
    return make_member(org, "manager", email="manager@acme.test")


def signed_in(membership: Membership) -> Client:
    client = Client(HTTP_HOST=HOST)
    client.force_login(membership.user, backend="twig_auth.passwords.backends.EmailBackend")
    session = client.session
    stepup.mark_verified(session)
    session.save()
    return client


@pytest.fixture
def web(manager: Membership) -> Client:
    """The manager's browser (connect, edit, process every data source by role)."""
    return signed_in(manager)


@pytest.fixture
def make_source(db: None) -> Callable[..., DataSource]:
    def make(org: Organization, kind: str = "google_drive", name: str = "Team drive") -> DataSource:
        return services.create_data_source(org=org, name=name, kind=kind, context=RequestContext.system())

    return make


def start(web: Client, source: DataSource) -> str:
    """Click Connect: return the provider's authorization URL the page redirects to."""
    response = web.post(f"/data-sources/{source.pk}/connect/")
    assert response.status_code == 302, response.content[:300]
    return response["Location"]


def play_op(authorize_url: str, login_hint: str = "alice") -> str:
    """Be the browser at the OP (AUTO_LOGIN signs ``login_hint`` in and consents); return the callback
    path?query it sends the browser back to."""
    session = requests.Session()
    response = session.get(authorize_url + "&" + urlencode({"login_hint": login_hint}), allow_redirects=False)
    for _ in range(10):
        location = response.headers["Location"]
        if location.startswith(BASE + "/"):
            callback = urlparse(location)
            return f"{callback.path}?{callback.query}"
        response = session.get(urljoin(response.url, location), allow_redirects=False)
    raise AssertionError("the OP never redirected back")


def connect(web: Client, source: DataSource) -> OAuthToken:
    """Connect ``source`` through the whole flow and return its stored token row."""
    response = web.get(play_op(start(web, source)))
    assert response.status_code == 302 and response["Location"] == "/data-sources/", response.content[:500]
    return OAuthToken.objects.get(subject=source.pk)


@pytest.fixture
def grant_view(db: None) -> Callable[..., Any]:
    """``grant_view(member, source, action="view")``: a grant made by an operator."""
    from twig_auth.authz import services as authz_services

    def give(member: Membership, source: DataSource, action: str = "view") -> Any:
        return authz_services.grant_permission(org=member.org, resource_type="data_source", resource_id=source.pk,
                                               action=action, user=member.user, context=RequestContext.system())

    return give


@pytest.fixture
def api(web: Client, manager: Membership) -> Any:
    """The manager's JSON API client (session authentication)."""
    from tests.workspace.helpers import JsonClient

    return JsonClient(web, manager)
