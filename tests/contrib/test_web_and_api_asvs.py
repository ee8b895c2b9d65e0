"""Web and API requirements of OWASP ASVS 4.0.3 (V4.2.2, V4.3.2, V13.1.5, V13.2.5) that no other test proves;
docs/security.md cites each test by name."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from twig_auth.apikeys.services import issue_api_key
from twig_project.workspace.models import Agent


@pytest.fixture
def bearer(owner: Any) -> dict[str, str]:
    _, plaintext = issue_api_key(creator=owner, name="ci", scopes=["read", "write"], environment="live")
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def test_an_accept_header_the_api_cannot_serve_is_406_json(bearer: dict[str, str]) -> None:
    """V13.1.5: a response type the API does not produce is refused with 406, in the contract's JSON shape."""
    client = Client()
    assert client.get("/api/agents", HTTP_ACCEPT="application/json", **bearer).status_code == 200
    for accept in ("application/xml", "text/csv", "image/png"):
        response = client.get("/api/agents", HTTP_ACCEPT=accept, **bearer)
        assert response.status_code == 406, accept
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["code"] == "not_acceptable"


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "application/xml",
                                          "multipart/form-data; boundary=x"])
def test_a_body_that_is_not_json_is_415_before_the_view_runs(bearer: dict[str, str], content_type: str) -> None:
    """V13.1.5, V13.2.5: the API reads JSON only and says so; nothing is created."""
    client = Client()
    body = '{"name": "Support bot"}'
    response = client.generic("POST", "/api/agents", body, content_type=content_type, **bearer)
    assert response.status_code == 415, response.content[:200]
    assert response.json()["code"] == "unsupported_media_type"
    assert not Agent.objects.filter(name="Support bot").exists()


@pytest.mark.parametrize("path", ["/static/", "/static/twig_auth/", "/.git/HEAD", "/.git/config", "/.env",
                                  "/.DS_Store", "/Thumbs.db", "/.svn/entries", "/api/", "/settings/"])
def test_no_directory_listing_or_repository_metadata_is_served(db: None, path: str) -> None:
    """V4.3.2: directories are never listed and dot-files or repository metadata are not served."""
    response = Client().get(path)
    assert response.status_code in (302, 404), (path, response.status_code)
    body = response.content.decode(errors="replace")
    assert "Index of" not in body and "[core]" not in body and "ref: refs/" not in body


@pytest.mark.parametrize("path,data", [
    ("/login/", {"email": "owner@acme.test", "password": "Correct-Horse-9!"}),
    ("/password/reset/", {"email": "owner@acme.test"}),
    ("/login/sso/", {"email": "owner@acme.test"}),
])
def test_unauthenticated_forms_refuse_a_post_without_the_csrf_token(owner: Any, path: str, data: dict) -> None:
    """V4.2.2: the sign-in, reset and SSO forms are CSRF-protected too (besides their throttles)."""
    client = Client(enforce_csrf_checks=True)
    assert client.post(path, data).status_code == 403
    client.get(path)
    token = client.cookies["csrftoken"].value
    assert client.post(path, {**data, "csrfmiddlewaretoken": token}).status_code != 403


def test_signed_in_forms_refuse_a_post_without_the_csrf_token(owner: Any) -> None:
    """V4.2.2: every state-changing page needs the token; a cross-site form post changes nothing."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user, backend="twig_auth.passwords.backends.EmailBackend")
    for path, data in (("/logout/", {}), ("/settings/api-keys/", {"name": "x", "scopes": ["read"]}),
                       ("/password/change/", {"old_password": "Correct-Horse-9!", "new_password1": "Aa1!" * 4,
                                              "new_password2": "Aa1!" * 4})):
        assert client.post(path, data).status_code == 403, path
    assert client.get("/").status_code == 200, "still signed in: the logout post was refused"
    owner.user.refresh_from_db()
    assert owner.user.check_password("Correct-Horse-9!")
