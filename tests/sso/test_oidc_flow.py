"""OIDC login per org through django-allauth, end to end against a real oidc-provider (node, AUTO_LOGIN: the
user is chosen by ``login_hint``): generic OIDC, Google-shaped and Microsoft-shaped connections, PKCE, state,
email checks, IdP MFA (``amr``) and allowed domains."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import pytest
import requests
from django.test import Client

from twig_auth.audit.models import AuditEvent
from twig_auth.orgs.models import Membership
from twig_auth.sso.models import SsoConnection

from .connections import verified_domain
from .oidc_peer import CUSTOM_ID, run_op

pytestmark = pytest.mark.django_db
HOST = "127.0.0.1:8000"  # the Django host the OP's redirect URIs name (no server: the test client answers)
BASE = f"http://{HOST}"


@pytest.fixture(scope="session")
def oidc_op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_op(tmp_path_factory.mktemp("oidc-op") / "op.log", BASE) as issuer:
        yield issuer


@pytest.fixture
def web() -> Client:
    return Client(HTTP_HOST=HOST)


@pytest.fixture
def connect(org: Any, oidc_op: str) -> Any:
    """Return ``make(kind="custom", **fields) -> SsoConnection``: the org's enabled OIDC connection at the OP."""
    verified_domain(org, "example.org")

    def make(kind: str = "custom", **kw: Any) -> SsoConnection:
        fields = {"name": f"{kind} IdP", "protocol": "oidc", "enabled": True, "oidc_provider": kind,
                  "oidc_issuer": oidc_op, "oidc_client_id": "test-client-post" if kind == "google" else "test-client",
                  "oidc_client_secret": "test-secret", **kw}
        if kind in ("custom", "okta", "onelogin"):
            fields.setdefault("id", CUSTOM_ID)
        return SsoConnection.objects.create(org=org, **fields)

    return make


def start(web: Client, next_url: str = "/account/") -> str:
    response = web.get(f"/sso/oidc/acme/login/?{urlencode({'next': next_url})}")
    assert response.status_code == 302, response.content[:300]
    return response["Location"]


def play_op(authorize_url: str, login_hint: str) -> str:
    """Be the browser at the OP (AUTO_LOGIN signs in ``login_hint``); return the callback path?query."""
    session = requests.Session()
    response = session.get(authorize_url + "&" + urlencode({"login_hint": login_hint}), allow_redirects=False)
    for _ in range(10):
        location = response.headers["Location"]
        if location.startswith(BASE + "/"):
            callback = urlparse(location)
            return f"{callback.path}?{callback.query}"
        response = session.get(urljoin(response.url, location), allow_redirects=False)
    raise AssertionError("the OP never redirected back")


def login_via(web: Client, login_hint: str, next_url: str = "/account/") -> Any:
    return web.get(play_op(start(web, next_url), login_hint))


def reason() -> str:
    return AuditEvent.objects.filter(event="SSO_FAILURE").latest("timestamp").details["reason"]


def test_custom_oidc_login_creates_the_user_and_membership_with_pkce(web: Client, connect: Any, org: Any) -> None:
    connection = connect("custom", group_attribute="groups", group_role_mapping={"Engineering": "manager"})
    authorize = start(web)
    query = parse_qs(urlparse(authorize).query)
    assert authorize.startswith(connection.oidc_issuer + "/auth?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["redirect_uri"] == [
        f"{BASE}/sso/oidc/accounts/oidc/{CUSTOM_ID}/login/callback/"]
    response = web.get(play_op(authorize, "alice"))
    assert response.status_code == 302 and response["Location"] == "/account/"
    membership = Membership.objects.select_related("user").get(org=org, user__email="alice@example.org")
    assert membership.role == "manager" and membership.user.name == "Alice Liddell"
    assert not membership.user.has_usable_password()
    assert web.session["_auth_user_id"] == str(membership.user.pk)
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.details["protocol"] == "oidc" and event.details["connection"] == connection.pk
    assert event.details["idpMfa"] is False and event.mfa_used is False
    from allauth.socialaccount.models import SocialAccount, SocialApp

    assert not SocialAccount.objects.exists() and not SocialApp.objects.exists()  # allauth stored nothing


def test_google_login(web: Client, connect: Any, org: Any) -> None:
    connect("google")
    authorize = start(web)
    query = parse_qs(urlparse(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"{BASE}/sso/oidc/accounts/google/login/callback/"]
    response = web.get(play_op(authorize, "bob"))
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert Membership.objects.get(org=org, user__email="bob@example.org").role == "user"


def test_microsoft_login(web: Client, connect: Any, org: Any) -> None:
    connect("microsoft")
    authorize = start(web)
    assert "/common/oauth2/v2.0/authorize?" in authorize and "code_challenge=" in authorize
    response = web.get(play_op(authorize, "alice"))
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert Membership.objects.filter(org=org, user__email="alice@example.org").exists()


def test_tampered_state_is_refused(web: Client, connect: Any) -> None:
    connect()
    callback = play_op(start(web), "alice")
    path, _, query = callback.partition("?")
    params = parse_qs(query)
    params["state"] = [params["state"][0][:-2] + "xx"]
    response = web.get(f"{path}?{urlencode(params, doseq=True)}")
    assert response.status_code == 403 and b"Authentication failed" in response.content
    assert reason() == "state_mismatch" and "_auth_user_id" not in web.session


def test_idp_refusal_is_refused(web: Client, connect: Any) -> None:
    connect()
    state = parse_qs(urlparse(start(web)).query)["state"][0]
    response = web.get(f"/sso/oidc/accounts/oidc/{CUSTOM_ID}/login/callback/?error=access_denied&state={state}")
    assert response.status_code == 403 and reason() == "access_denied"


@pytest.mark.parametrize(("hint", "expected"), [("carol", "email_unverified"), ("dave", "no_email")])
def test_unverified_or_missing_email_is_refused(web: Client, connect: Any, hint: str, expected: str) -> None:
    connect()
    response = login_via(web, hint)
    assert response.status_code == 403 and b"Authentication failed" in response.content
    assert reason() == expected and "_auth_user_id" not in web.session


@pytest.mark.parametrize("trusted", [True, False])
def test_idp_mfa_from_amr(web: Client, connect: Any, trusted: bool) -> None:
    connect(trust_idp_mfa=trusted)
    assert login_via(web, "bob").status_code == 302  # bob's amr: pwd, mfa, otp
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.details["idpMfa"] is True and event.mfa_used is trusted


def test_user_outside_the_allowed_domains(web: Client, connect: Any) -> None:
    connect()
    response = login_via(web, "mallory")
    assert response.status_code == 403 and b"Unauthorized domain" in response.content
    assert reason() == "unauthorized_domain"
    assert not Membership.objects.filter(user__email="mallory@outside.test").exists()


def test_disabled_connection_does_not_start(web: Client, connect: Any) -> None:
    connect(enabled=False)
    response = web.get("/sso/oidc/acme/login/")
    assert response.status_code == 403 and reason() == "connection_disabled"


def test_callback_without_a_started_flow_is_refused(connect: Any) -> None:
    connect("google")
    assert Client(HTTP_HOST=HOST).get("/sso/oidc/accounts/google/login/callback/?code=x&state=y").status_code == 404
