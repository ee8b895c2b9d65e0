"""Every /api/ error is JSON ``{"detail", "code"}`` with the contract's status and code."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from rest_framework import exceptions as drf

from twig_auth import exceptions as domain
from twig_auth.contrib.rest_framework.exceptions import exception_handler, field_errors
from twig_project import views as project_views
from twig_project.workspace import views as api_views

pytestmark = pytest.mark.django_db

API_CALLS = [("get", "/api/agents"), ("post", "/api/agents"), ("get", "/api/agents/agt_x"),
             ("patch", "/api/agents/agt_x"), ("post", "/api/agents/agt_x/deploy"), ("get", "/api/data-sources"),
             ("delete", "/api/data-sources/src_x"), ("post", "/api/data-sources/src_x/sync"),
             ("get", "/api/interactions"), ("post", "/api/query"), ("post", "/api/chat"),
             ("get", "/api/org/settings"), ("patch", "/api/org/settings")]


def _assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize("method, path", API_CALLS)
def test_no_session_is_401_with_a_bearer_challenge(client, method, path):
    response = getattr(client, method)(path)
    _assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_signed_in_user_without_an_org_is_403(logged_in, make_user):
    client = logged_in(make_user())
    body = _assert_error(client.get("/api/agents"), 403, "permission_denied")
    assert "member" in body["detail"]


def test_unknown_api_url_is_json_404(client, logged_in, owner):
    _assert_error(client.get("/api/nothing-here"), 404, "not_found")
    _assert_error(logged_in(owner.user).post("/api/agents/x/y/z"), 404, "not_found")


def test_unknown_page_outside_the_api_is_not_json(client):
    response = client.get("/definitely-not-a-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_wrong_method_is_405_with_allow(logged_in, owner):
    response = logged_in(owner.user).delete("/api/agents")
    body = _assert_error(response, 405, "method_not_allowed")
    assert "DELETE" in body["detail"]
    assert set(response["Allow"].split(", ")) >= {"GET", "POST"}


def test_unhandled_exception_is_json_500_without_a_trace(logged_in, owner, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(api_views.AgentListView, "get", boom)
    client = logged_in(owner.user)
    client.raise_request_exception = False
    response = client.get("/api/agents")
    body = _assert_error(response, 500, "server_error")
    assert "secret" not in response.content.decode() and "Traceback" not in response.content.decode()
    assert body == {"detail": "A server error occurred.", "code": "server_error"}


def test_handler500_answers_json_under_api_only():
    request = RequestFactory().get("/api/agents")
    response = project_views.server_error(request)
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    page = project_views.server_error(RequestFactory().get("/"))
    assert page.status_code == 500 and not page["Content-Type"].startswith("application/json")


def test_domain_errors_map_to_their_status():
    assert exception_handler(domain.PermissionDenied("no", fields=["sso"]), {}).data == {
        "detail": "no", "code": "permission_denied", "fields": ["sso"]}
    assert exception_handler(domain.NotFound(), {}).status_code == 404
    locked = exception_handler(domain.AccountLocked(120), {})
    assert (locked.status_code, locked["Retry-After"], locked.data["code"]) == (403, "120", "account_locked")
    creds = exception_handler(domain.InvalidCredentials(), {})
    assert creds.status_code == 401 and creds["WWW-Authenticate"].startswith("Bearer")
    invalid = exception_handler(domain.InvalidInput({"session.timeout": ["Must be a whole number."]}), {})
    assert invalid.status_code == 400
    assert invalid.data == {"detail": "Invalid input: session.timeout.", "code": "invalid",
                            "errors": {"session.timeout": ["Must be a whole number."]}}


def test_drf_errors_map_to_contract_codes():
    throttled = exception_handler(drf.Throttled(wait=1.2), {})
    assert (throttled.status_code, throttled.data["code"]) == (429, "rate_limit_exceeded")
    assert throttled["Retry-After"] == "2"
    parse = exception_handler(drf.ParseError("JSON parse error - x"), {})
    assert parse.status_code == 400 and parse.data["code"] == "invalid"
    assert parse.data["errors"] == {"non_field_errors": ["JSON parse error - x"]}
    failed = exception_handler(drf.AuthenticationFailed(), {})
    assert failed.status_code == 401 and failed.data["code"] == "not_authenticated"


def test_field_errors_flatten_nested_detail():
    detail = {"name": ["Too long."], "messages": [{}, {"role": ["Bad."]}], "config": {"non_field_errors": ["No."]},
              "tags": {0: ["Not a string."]}}
    assert field_errors(detail) == {"name": ["Too long."], "messages.1.role": ["Bad."], "config": ["No."],
                                    "tags.0": ["Not a string."]}
    assert field_errors(["Plain."]) == {"non_field_errors": ["Plain."]}


def test_csrf_is_enforced_for_session_writes(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user, backend="twig_auth.passwords.backends.EmailBackend")
    response = client.post("/api/agents", {"name": "x"}, content_type="application/json")
    body = _assert_error(response, 403, "permission_denied")
    assert "CSRF" in body["detail"]


@pytest.mark.parametrize("method, path, status, code", [
    ("get", "/api/agents/agt_nope", 404, "not_found"),
    ("get", "/api/query", 405, "method_not_allowed"),
    ("post", "/api/agents", 400, "invalid"),
])
def test_errors_are_json_even_when_a_browser_asks_for_html(logged_in, owner, method, path, status, code):
    client = logged_in(owner.user)
    response = getattr(client, method)(path, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8",
                                       content_type="application/json")
    _assert_error(response, status, code)


def test_no_session_is_json_401_for_a_browser_too(client):
    response = client.get("/api/agents", HTTP_ACCEPT="text/html")
    _assert_error(response, 401, "not_authenticated")
