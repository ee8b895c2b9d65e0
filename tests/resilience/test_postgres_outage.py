"""A real PostgreSQL stopped under a real server: the reference project under gunicorn (2 workers) on its own
private PostgreSQL cluster (``bench/servers.py``: initdb in a temporary directory, a free port; never the
shared server other tests use). While the cluster is stopped every API request answers 503
``service_unavailable`` with ``Retry-After`` and every page the 503 page; none answers 500. Once it is
started again, or after a restart that no request noticed, the first requests are served (persistent
connections the server dropped are replaced before use: ``CONN_HEALTH_CHECKS``).

Runs the same on both suite backends (it does not use the suite's database). Missing PostgreSQL server
binaries fail the test: it must never be skipped.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bench.servers import Gunicorn, PrivatePostgres, ServerError, manage, postgres_bin

PASSWORD = "Outage-Test-2026!"
SEED = f"""
import json
from django.contrib.auth import get_user_model
from twig_auth.apikeys.services import issue_api_key
from twig_auth.orgs import services
org = services.create_organization(slug="acme", name="Acme", plan="enterprise")
user = get_user_model().objects.create_user(email="owner@acme.test", password={PASSWORD!r})
member = services.add_member(org=org, user=user, role="super_admin")
_, key = issue_api_key(creator=member, name="outage", scopes=["read"], environment="live")
print(json.dumps({{"key": key}}))
"""


@dataclass
class Browser:
    """Cookies kept between requests, as a browser would."""

    cookies: dict[str, str] = field(default_factory=dict)

    def header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def keep(self, headers: list[tuple[str, str]]) -> None:
        for name, value in headers:
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                self.cookies[key.strip()] = val.strip().strip('"')


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(port: int, method: str, path: str, *, body: Any = None, form: dict[str, str] | None = None,
         headers: dict[str, str] | None = None, browser: Browser | None = None) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    sent = dict(headers or {})
    data = None
    if body is not None:
        data, sent["Content-Type"] = json.dumps(body), "application/json"
    elif form is not None:
        data = "&".join(f"{k}={v}" for k, v in form.items())
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    if browser is not None:
        sent.update(browser.header())
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        if browser is not None:
            browser.keep(response.getheaders())
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, raw)
    finally:
        conn.close()


@dataclass
class Stack:
    pg: PrivatePostgres
    server: Gunicorn
    key: str

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if postgres_bin() is None or shutil.which("runuser") is None:
        pytest.fail("PostgreSQL server binaries are missing: apt-get install -y postgresql (scripts/test installs "
                    "it). This outage test must run, never skip.", pytrace=False)
    pg = PrivatePostgres()
    server = None
    try:
        pg.init()
        pg.start()
        pg.createdb("twig_outage")
        env = {"DATABASE_URL": pg.url("twig_outage"), "REDIS_URL": "", "DJANGO_DEBUG": "0",
               "TWIG_LOG_LEVEL": "WARNING"}
        manage(env, "migrate", "-v", "0")
        key = json.loads(manage(env, "shell", "-c", SEED).strip().splitlines()[-1])["key"]
        server = Gunicorn(env, workers=2)
        server.start()
        yield Stack(pg, server, key)
    except ServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        if server is not None:
            server.stop()
        pg.cleanup()


def sign_in_page(port: int) -> Browser:
    browser = Browser()
    form = call(port, "GET", "/login/", browser=browser)
    assert form.status == 200, form.body[:300]
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form.body)
    assert token is not None
    done = call(port, "POST", "/login/", browser=browser, headers={"Referer": f"http://127.0.0.1:{port}/login/"},
                form={"csrfmiddlewaretoken": token.group(1).decode(), "email": "owner%40acme.test",
                      "password": PASSWORD})
    assert done.status == 302, done.body[:500]
    return browser


def requests_of(stack: Stack, browser: Browser, access: str) -> dict[str, Any]:
    port = stack.port
    return {
        "api key": lambda: call(port, "GET", "/api/agents", headers={"Authorization": f"Bearer {stack.key}"}),
        "access token": lambda: call(port, "GET", "/api/agents", headers={"Authorization": f"Bearer {access}"}),
        "password for tokens": lambda: call(port, "POST", "/api/auth/token",
                                            body={"email": "owner@acme.test", "password": PASSWORD}),
        "page with session": lambda: call(port, "GET", "/", browser=browser),
    }


def assert_served(requests: dict[str, Any], rounds: int) -> None:
    """Every request, ``rounds`` times (so both workers answer), is served: 200, never a 5xx. The password
    login only in the first round: sign-ins are throttled per account (10 a minute)."""
    for i in range(rounds):
        for name, send in requests.items():
            if name == "password for tokens" and i:
                continue
            answer = send()
            assert answer.status == 200, f"{name}: {answer.status} {answer.body[:300]!r}"


def test_stopped_postgres_answers_503_with_retry_after_and_recovers_without_a_5xx(stack: Stack) -> None:
    port = stack.port
    tokens = call(port, "POST", "/api/auth/token", body={"email": "owner@acme.test", "password": PASSWORD})
    assert tokens.status == 200, tokens.body[:300]
    browser = sign_in_page(port)
    requests = requests_of(stack, browser, tokens.json()["access_token"])
    assert_served(requests, rounds=3)

    stack.pg.stop("fast")
    try:
        for i in range(4):
            for name in ("api key", "access token") + (("password for tokens",) if i < 2 else ()):
                answer = requests[name]()
                assert answer.status == 503, f"{name}: {answer.status} {answer.body[:300]!r}"
                assert answer.headers["content-type"].startswith("application/json"), name
                assert answer.json()["code"] == "service_unavailable", name
                assert answer.headers["retry-after"] == "5", name
            page = requests["page with session"]()
            assert page.status == 503, page.body[:300]
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["retry-after"] == "5"
            assert b"Temporarily unavailable" in page.body
    finally:
        stack.pg.start()
    assert_served(requests, rounds=3)  # the first requests after the outage are served

    # A fast restart nobody noticed: each worker's persistent connection is dead, and is replaced before use.
    stack.pg.restart("fast")
    assert_served(requests, rounds=3)
    log = stack.server.read_log()
    assert "Traceback" not in log and "Internal Server Error" not in log, log[-3000:]
    assert "The database is unavailable" in log
