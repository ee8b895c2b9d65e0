"""The database unreachable mid-test: every request answers 503 ``service_unavailable`` with ``Retry-After``
(JSON for the API, the 503 page for pages), never a 500; the same requests are served again once it is back.

The outage is real, on both suite backends: the connection is closed and pointed at a loopback port that
refuses connections (PostgreSQL) or at a file that cannot be opened (SQLite), so the next query fails in
the driver as it does when the server is down. ``tests/resilience/test_postgres_outage.py`` stops a real
private PostgreSQL under gunicorn.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.core.cache import caches
from django.db import connection
from django.db import utils as db_utils
from django.test import Client, RequestFactory

from tests.conftest import PASSWORD
from twig_auth.apikeys.services import issue_api_key
from twig_auth.core import unavailable
from twig_auth.core.unavailable import DatabaseUnavailableMiddleware, is_database_unavailable

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_down() -> Iterator[None]:
    """Make every new connection of the default alias fail as an unreachable server does; restore after."""
    saved = dict(connection.settings_dict)
    connection.close()
    with socket.socket() as closed:  # bound, never listening: a connect is refused at once
        closed.bind(("127.0.0.1", 0))
        if connection.vendor == "postgresql":
            connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed.getsockname()[1]))
        else:
            connection.settings_dict["NAME"] = "/nonexistent-twig-outage-dir/db.sqlite3"
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)


@pytest.fixture(autouse=True)
def _fresh_warner(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setattr(unavailable, "_warner", unavailable._Warner())
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_BCRYPT_ROUNDS": 4}


@pytest.fixture
def world(org: Any, owner: Any) -> dict[str, Any]:
    _, key = issue_api_key(creator=owner, name="outage", scopes=["read", "execute"], environment="live")
    api = Client(raise_request_exception=False)
    tokens = api.post("/api/auth/token", {"email": "owner@acme.test", "password": PASSWORD},
                      content_type="application/json")
    assert tokens.status_code == 200, tokens.content
    browser = Client(raise_request_exception=False)
    signed_in = browser.post("/login/", {"email": "owner@acme.test", "password": PASSWORD})
    assert signed_in.status_code == 302, signed_in.content[:300]
    return {"key": key, "access": tokens.json()["access_token"], "browser": browser}


def cold_caches() -> None:
    """Drop cached keys and sessions so the request must read the database (in authentication, in middleware)."""
    for alias in caches:
        caches[alias].clear()
    from twig_auth.apikeys.verification import clear_local

    clear_local()


def assert_api_503(response: Any, retry_after: int = 5) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert body["code"] == "service_unavailable"
    assert body["retry_after"] == retry_after
    assert f"{retry_after} seconds" in body["detail"]
    assert response["Retry-After"] == str(retry_after)


def assert_page_503(response: Any) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == "5"
    html = response.content.decode()
    assert '<html lang="en">' in html and html.count("<h1") == 1 and "Temporarily unavailable" in html
    assert "Something went wrong" not in html  # not the 500 page


def api_requests(w: dict[str, Any]) -> dict[str, Any]:
    client = Client(raise_request_exception=False)
    return {
        "api key": lambda: client.get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {w['key']}"),
        "access token": lambda: client.get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {w['access']}"),
        "session": lambda: w["browser"].get("/api/agents"),
        "password for tokens": lambda: client.post("/api/auth/token", {"email": "owner@acme.test",
                                                                       "password": PASSWORD},
                                                   content_type="application/json"),
        "query": lambda: client.post("/api/query", {"agent": "nope", "question": "hi"},
                                     content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {w['key']}"),
    }


def test_every_api_credential_gets_503_service_unavailable_while_the_database_is_down_then_200(
        world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    requests = api_requests(world)
    with caplog.at_level(logging.INFO), database_down():
        for name, send in requests.items():
            cold_caches()  # the session is then loaded in middleware, the key in DRF authentication
            response = send()
            assert_api_503(response)
            assert "server_error" not in response.content.decode(), name
    outage = [r for r in caplog.records if r.name == "twig_auth.core.unavailable"]
    assert len(outage) == 1 and outage[0].levelno == logging.WARNING, [r.getMessage() for r in outage]
    assert "SQLSTATE" in outage[0].getMessage() and "127.0.0.1" not in outage[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], \
        [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    # back: the very same requests are served
    assert requests["api key"]().status_code == 200
    assert requests["access token"]().status_code == 200
    assert requests["session"]().status_code == 200
    assert requests["password for tokens"]().status_code == 200


def test_retry_after_follows_the_setting(world: dict[str, Any], settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "DATABASE_RETRY_AFTER_SECONDS": 12}
    with database_down():
        assert_api_503(Client().get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {world['key']}"), retry_after=12)


def test_pages_get_the_503_page_whether_the_error_is_raised_in_middleware_or_in_the_view(
        world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    anonymous = Client(raise_request_exception=False)
    with caplog.at_level(logging.INFO), database_down():
        cold_caches()
        assert_page_503(world["browser"].get("/"))  # session load in TwigSessionMiddleware
        assert_page_503(world["browser"].get("/settings/security/"))
        assert_page_503(anonymous.post("/login/", {"email": "owner@acme.test", "password": PASSWORD}))  # the view
        # a page URL asked for JSON only, and an API URL from a browser, answer JSON
        assert_api_503(anonymous.post("/login/", {"email": "owner@acme.test", "password": PASSWORD},
                                      HTTP_ACCEPT="application/json"))
        assert_api_503(world["browser"].get("/api/agents", HTTP_ACCEPT="text/html"))
    # Django's "Internal Server Error" line for the 500 the middleware swapped is not written either
    assert not [r for r in caplog.records if r.name == "django.request"], \
        [r.getMessage() for r in caplog.records if r.name == "django.request"]
    assert world["browser"].get("/").status_code == 200


def test_the_session_survives_the_outage(world: dict[str, Any]) -> None:
    """A 503 must not end or rewrite the session: the same cookie is signed in once the database is back."""
    with database_down():
        cold_caches()
        assert world["browser"].get("/").status_code == 503
    assert world["browser"].get("/").status_code == 200


def real_error(sql: str) -> BaseException:
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError(f"{sql!r} did not fail")


def wrapped(driver_error: BaseException) -> db_utils.OperationalError:
    error = db_utils.OperationalError(*driver_error.args)
    error.__cause__ = driver_error
    return error


def test_only_outages_count_as_the_database_being_unavailable() -> None:
    with database_down():
        try:
            connection.ensure_connection()
        except Exception as exc:  # noqa: BLE001
            refused = exc
        else:
            raise AssertionError("the connection did not fail")
    assert isinstance(refused, db_utils.OperationalError) and is_database_unavailable(refused)
    # a missing table is a bug (SQLite reports it as an OperationalError): a 500, never a 503
    assert not is_database_unavailable(real_error("SELECT * FROM twig_no_such_table"))
    assert not is_database_unavailable(db_utils.IntegrityError("duplicate key"))
    assert not is_database_unavailable(ValueError("unrelated"))
    assert is_database_unavailable(db_utils.InterfaceError("connection already closed"))
    # PostgreSQL's own answers: shutting down, starting up, too many connections; a cancelled statement is not
    assert is_database_unavailable(wrapped(psycopg.errors.AdminShutdown()))
    assert is_database_unavailable(wrapped(psycopg.errors.CannotConnectNow()))
    assert is_database_unavailable(wrapped(psycopg.errors.TooManyConnections()))
    assert not is_database_unavailable(wrapped(psycopg.errors.QueryCanceled()))
    # raised from an outage, several levels up (a service re-raising with ``from``)
    try:
        try:
            raise refused
        except db_utils.OperationalError as inner:
            raise RuntimeError("could not save") from inner
    except RuntimeError as outer:
        assert is_database_unavailable(outer)


def test_other_errors_are_left_to_djangos_500() -> None:
    middleware = DatabaseUnavailableMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]
    request = RequestFactory().get("/")
    assert middleware.process_exception(request, db_utils.ProgrammingError("syntax error")) is None
    assert middleware.process_exception(request, KeyError("x")) is None


def test_the_503_page_links_back_only_to_this_site() -> None:
    request = RequestFactory().get("/agents/")
    assert 'href="/agents/"' in unavailable.unavailable_response(request).content.decode()
    request.path = "//evil.test/phish"  # a crafted double-slash URL must not become a foreign "Try again" link
    html = unavailable.unavailable_response(request).content.decode()
    assert "evil.test" not in html and 'href="/"' in html
