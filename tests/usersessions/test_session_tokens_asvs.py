"""Session-token requirements of OWASP ASVS 4.0.3 (V3.1, V3.2, V3.4) that no other test proves; docs/security.md
cites each test by name."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.test import Client

from tests.conftest import PASSWORD
from twig_auth.apikeys.services import issue_api_key
from twig_auth.usersessions import cookie
from twig_auth.usersessions.models import UserSession


def sid_of(client: Client, name: str | None = None) -> str | None:
    return cookie.read(client.cookies[name or settings.SESSION_COOKIE_NAME].value)[0]


def test_signing_in_replaces_a_session_made_before_and_revokes_it(owner: Any) -> None:
    """V3.2.1: a session planted before sign-in (session fixation) is not the one that signs in."""
    client = Client()
    session = client.session
    session["planted"] = "by an attacker"
    session.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key  # the signed cookie value
    before = sid_of(client)
    assert before and UserSession.objects.filter(pk=before, revoked_at__isnull=True).exists()

    response = client.post("/login/", {"email": "owner@acme.test", "password": PASSWORD})
    assert response.status_code == 302

    after = sid_of(client)
    assert after and after != before
    assert UserSession.objects.get(pk=before).revoked_at is not None
    assert UserSession.objects.get(pk=after).user_id == owner.user_id
    planted = Client()
    planted.cookies[settings.SESSION_COOKIE_NAME] = cookie.issue(before, 3600)[0]
    assert planted.get("/").status_code == 302, "the pre-login session never becomes signed in"


def test_session_record_keys_are_long_random_and_never_repeat(owner: Any) -> None:
    """V3.2.2, V3.2.4: 32 characters of [a-z0-9] from ``secrets`` (about 165 bits) per record, signed HS256."""
    keys = set()
    for _ in range(5):
        client = Client()
        client.post("/login/", {"email": "owner@acme.test", "password": PASSWORD})
        key = sid_of(client)
        assert key and re.fullmatch(r"[a-z0-9]{32}", key)
        keys.add(key)
    assert len(keys) == 5


def test_session_and_api_credentials_are_never_taken_from_the_url(owner: Any) -> None:
    """V3.1.1, V13.1.3: no credential travels in a URL; one put there is ignored."""
    client = Client()
    response = client.post("/login/", {"email": "owner@acme.test", "password": PASSWORD, "next": "/"})
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert value not in response["Location"] and sid_of(client) not in response["Location"]

    stranger = Client()
    for name in (settings.SESSION_COOKIE_NAME, "sessionid", "sid"):
        assert stranger.get(f"/?{name}={value}").status_code == 302, "a session in the query string is ignored"
        assert stranger.get(f"/api/agents?{name}={value}").status_code == 401

    _, plaintext = issue_api_key(creator=owner, name="ci", scopes=["read"], environment="live")
    assert stranger.get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 200
    for name in ("api_key", "key", "token", "access_token"):
        response = stranger.get(f"/api/agents?{name}={plaintext}")
        assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_a_host_prefixed_cookie_name_works_over_https(owner: Any, settings: Any) -> None:
    """V3.4.4 (option): with ``SESSION_COOKIE_NAME = "__Host-twig_session"`` the cookie meets the prefix's rules."""
    settings.SESSION_COOKIE_NAME = "__Host-twig_session"
    client = Client()
    response = client.post("/login/", {"email": "owner@acme.test", "password": PASSWORD}, secure=True)
    morsel = response.cookies["__Host-twig_session"]
    assert morsel["secure"] and morsel["path"] == "/" and not morsel["domain"] and morsel["httponly"]
    assert client.get("/", secure=True).status_code == 200


def test_the_cookie_path_follows_the_setting(owner: Any, settings: Any) -> None:
    """V3.4.5: an app published under a path can scope the cookie to it with ``SESSION_COOKIE_PATH``."""
    response = Client().post("/login/", {"email": "owner@acme.test", "password": PASSWORD})
    assert response.cookies[settings.SESSION_COOKIE_NAME]["path"] == "/"
    settings.SESSION_COOKIE_PATH = "/twig/"
    response = Client().post("/login/", {"email": "owner@acme.test", "password": PASSWORD})
    assert response.cookies[settings.SESSION_COOKIE_NAME]["path"] == "/twig/"
