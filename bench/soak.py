"""Soak with faults: the reference project under gunicorn on a private PostgreSQL and a private Redis, a mixed
load for a few minutes while Redis is stopped, frozen and restarted and PostgreSQL restarted and stopped.

Usage: ``.venv/bin/python bench/soak.py [--minutes 3] [--workers 4] [--keep]``

Everything runs on this machine's loopback and is started and stopped here: a PostgreSQL cluster made with
``initdb`` in a temporary directory (``bench/servers.py``), a ``redis-server`` without persistence, and
gunicorn (sync workers) serving ``twig_project`` with ``DATABASE_URL``/``REDIS_URL`` pointing at them. The
shared servers on 5432/6379 are never touched. The script migrates, seeds (``twig_demo`` plus its own
accounts, keys and revoked credentials), then drives for ``--minutes``:

* sign-ins: ``POST /api/auth/token`` and the login page (right passwords), and wrong ones (unknown emails),
  from eight loopback source addresses (127.0.1.1-8) so the per-IP sign-in throttle is not the bottleneck;
* API-key calls: agent list and detail, paced under each key's ``read`` rate;
* queries to the built-in agents (``POST /api/query``, ``execute`` scope);
* token refreshes (rotation) of two token families, each followed by a call with the new access token;
* a checker presenting, over and over, a revoked API key, an access token and a refresh token of a revoked
  family, and the cookie of a signed-out session: every one must always be refused.

Faults on a schedule (fractions of the run): Redis stopped (SIGTERM) and restarted empty; Redis frozen
(SIGSTOP) and resumed; PostgreSQL ``pg_ctl restart -m fast``; PostgreSQL stopped, then started. After each
Redis fault, once every gunicorn worker has logged that Redis is reachable again, a burst on a fresh key
(whose org's ``read`` limit is 20 a day) must admit exactly 20 requests, and at the end of the run another.

Invariants (the exit status is 1 when one fails): no 5xx outside the PostgreSQL outage windows (each from
the fault until two seconds after the server is back), no 5xx other than 503 ``service_unavailable``
inside them, no transport error (connection refused or reset by gunicorn), no revoked credential accepted,
no audit event lost (every sign-in answered as a success or a failure has its ``LOGIN_SUCCESS`` or
``LOGIN_FAILURE`` row; rows beyond those are bounded by the answers that were ambiguous: a 503 or a
broken connection), and the bursts exact. The report prints requests by status per phase, then the checks.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import http.client
import itertools
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servers import Gunicorn, PrivatePostgres, PrivateRedis, ServerError, manage  # noqa: E402

PASSWORD = "Soak-Test-2026!"
SOURCE_IPS = [f"127.0.1.{i}" for i in range(1, 9)]  # sign-ins: the per-IP throttle is 30 a minute
REFRESH_IPS = [f"127.0.2.{i}" for i in range(1, 5)]  # refresh and revoke share that per-IP rate
CHECKER_IPS = [f"127.0.3.{i}" for i in range(1, 5)]
LOGIN_ACCOUNTS = 8
READ_KEYS = 12
BURST_LIMIT = 20  # the burst org's rateLimits.read: "20/d", so nothing refills during a burst
BURST_REQUESTS = 40
PG_GRACE = 2.0  # seconds after PostgreSQL is back still counted in its outage window
API_RATE = 20.0  # requests per second over all read keys (each key stays under its 200/min)
QUERY_RATE = 2.0
LOGIN_INTERVAL = 1.2
REFRESH_INTERVAL = 1.0
CHECK_INTERVAL = 0.25
REVOKED = ("revoked: API key", "revoked: access token", "revoked: refresh token", "revoked: signed-out session")


# -- HTTP ---------------------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int  # 0: transport error (refused, reset, timeout)
    headers: dict[str, str]
    body: bytes
    error: str = ""

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def code(self) -> str:
        data = self.json() if self.headers.get("content-type", "").startswith("application/json") else None
        return str(data.get("code", "")) if isinstance(data, dict) else ""


@dataclass
class Jar:
    cookies: dict[str, str] = field(default_factory=dict)

    def header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def keep(self, headers: list[tuple[str, str]]) -> None:
        for name, value in headers:
            if name.lower() == "set-cookie":
                key, _, val = value.split(";", 1)[0].partition("=")
                if val.strip('"'):
                    self.cookies[key.strip()] = val.strip('"')
                else:
                    self.cookies.pop(key.strip(), None)


class Http:
    def __init__(self, port: int) -> None:
        self.port = port

    def __call__(self, method: str, path: str, *, body: Any = None, form: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None, jar: Jar | None = None,
                 source: str = "127.0.0.1", timeout: float = 30) -> Answer:
        sent = dict(headers or {})
        data: str | None = None
        if body is not None:
            data, sent["Content-Type"] = json.dumps(body), "application/json"
        elif form is not None:
            data, sent["Content-Type"] = urllib.parse.urlencode(form), "application/x-www-form-urlencoded"
        if jar is not None and jar.cookies:
            sent["Cookie"] = jar.header()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout, source_address=(source, 0))
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            raw = response.read()
            if jar is not None:
                jar.keep(response.getheaders())
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, raw)
        except (OSError, http.client.HTTPException) as exc:
            return Answer(0, {}, b"", f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()


# -- what happened ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the load started, when the request was sent
    driver: str
    status: int
    code: str
    ms: float
    unavailable: bool  # a proper 503: Retry-After, and code service_unavailable (JSON) or the 503 page

    @property
    def end(self) -> float:
        return self.t + self.ms / 1e3


@dataclass
class Window:
    name: str
    start: float
    end: float | None = None
    pg: bool = False  # a PostgreSQL outage: 503 service_unavailable expected


class Recorder:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.samples: list[Sample] = []
        self.windows: list[Window] = []
        self.accepted_revoked: list[str] = []
        self.acked: collections.Counter[tuple[str, str]] = collections.Counter()
        self.ambiguous: collections.Counter[tuple[str, str]] = collections.Counter()
        self.notes: collections.Counter[str] = collections.Counter()
        self.bursts: list[dict[str, Any]] = []
        self.transport: list[str] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def send(self, driver: str, call: Callable[[], Answer]) -> Answer:
        start = self.now()
        answer = call()
        proper = answer.status == 503 and "retry-after" in answer.headers and (
            answer.code == "service_unavailable" or answer.headers.get("content-type", "").startswith("text/html"))
        with self.lock:
            self.samples.append(Sample(start, driver, answer.status, answer.code, (self.now() - start) * 1e3,
                                       proper))
            if answer.status == 0 and len(self.transport) < 20:
                self.transport.append(f"{start:.1f}s {driver}: {answer.error}")
        return answer

    def audit(self, event: str, email: str, answer: Answer, *, success: int | tuple[int, ...]) -> None:
        """Count an audited sign-in: acknowledged (its answer says it happened), ambiguous (503, broken
        connection: it may or may not have been written) or nothing (throttled: refused before it ran)."""
        ok = answer.status in ((success,) if isinstance(success, int) else success)
        with self.lock:
            if ok:
                self.acked[(event, email)] += 1
            elif answer.status == 0 or answer.status >= 500:
                self.ambiguous[(event, email)] += 1
            elif answer.status != 429:
                self.notes[f"unexpected {answer.status} {answer.code or ''} on {event}".strip()] += 1

    def note(self, text: str) -> None:
        with self.lock:
            self.notes[text] += 1

    def window(self, name: str, *, pg: bool = False) -> Window:
        w = Window(name, self.now(), pg=pg)
        with self.lock:
            self.windows.append(w)
        return w

    def close(self, w: Window) -> None:
        w.end = self.now()


# -- the world ----------------------------------------------------------------------------------------

@dataclass
class World:
    read_keys: list[str]
    agent_ids: list[str]
    login_emails: list[str]
    refresh_emails: list[str]
    revoked_key: str = ""
    revoked_access: str = ""
    revoked_refresh: str = ""
    revoked_session: Jar = field(default_factory=Jar)
    burst_owner_pk: Any = None


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "twig_project.settings"
    import django

    django.setup()


def fresh_connections() -> None:
    """The servers restart under us: never reuse a connection across a fault."""
    from django.db import connections

    connections.close_all()


def seed() -> World:
    """Demo data plus the soak's accounts, keys and burst org (in this process, on the private database)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command

    from twig_auth.apikeys.services import issue_api_key
    from twig_auth.core.context import RequestContext
    from twig_auth.orgs import services as org_services
    from twig_auth.orgs.models import Membership, Organization
    from twig_project.workspace.models import Agent

    call_command("twig_demo", password=PASSWORD, verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    system = RequestContext.system()
    org = Organization.objects.get(slug="acme")
    User = get_user_model()
    hashed = make_password(PASSWORD)

    def member(org: Any, email: str, role: str) -> Any:
        user = User.objects.create(email=email, password=hashed)
        return org_services.add_member(org=org, user=user, role=role, context=system)

    logins = [f"soak-{i}@acme.test" for i in range(LOGIN_ACCOUNTS)]
    refreshers = [f"refresh-{i}@acme.test" for i in range(2)]
    for email in [*logins, *refreshers, "revoked-session@acme.test"]:
        member(org, email, "user")
    owner = Membership.objects.get(org=org, user__email="owner@acme.test")
    keys = [issue_api_key(creator=owner, name=f"soak-{i}", scopes=["read", "execute"], environment="live",
                          context=system)[1] for i in range(READ_KEYS)]
    burst_org = org_services.create_organization(slug="soak-burst", name="Soak burst", plan="enterprise",
                                                 context=system)
    burst_owner = member(burst_org, "burst-owner@acme.test", "super_admin")
    org_services.update_org_settings(org=burst_org, patch={"rateLimits": {"read": f"{BURST_LIMIT}/d"}},
                                     context=system)
    agents = [str(pk) for pk in Agent.objects.filter(org=org).values_list("pk", flat=True)]
    fresh_connections()
    return World(keys, agents, logins, refreshers, burst_owner_pk=burst_owner.pk)


def issue_key(creator_pk: Any, name: str) -> tuple[Any, str]:
    from twig_auth.apikeys.services import issue_api_key
    from twig_auth.core.context import RequestContext
    from twig_auth.orgs.models import Membership

    fresh_connections()
    try:
        return issue_api_key(creator=Membership.objects.get(pk=creator_pk), name=name, scopes=["read"],
                             environment="live", context=RequestContext.system())
    finally:
        fresh_connections()


def page_login(http: Http, email: str, jar: Jar, source: str, rec: Recorder | None = None) -> tuple[Answer, bool]:
    """GET the login page (CSRF cookie), POST the form; return the last answer and whether the POST was sent.
    A success is a 302 away from /login/."""
    def send(call: Callable[[], Answer]) -> Answer:
        return rec.send("login page", call) if rec else call()

    form = send(lambda: http("GET", "/login/", jar=jar, source=source))
    if form.status != 200:
        return form, False
    token = jar.cookies.get("csrftoken", "")
    return send(lambda: http("POST", "/login/", jar=jar, source=source,
                             form={"csrfmiddlewaretoken": token, "email": email, "password": PASSWORD})), True


def page_login_ok(answer: Answer) -> bool:
    return answer.status == 302 and "/login/" not in answer.headers.get("location", "")


def revoke_credentials(http: Http, world: World, creator_pk: Any) -> None:
    """Make the revoked credentials, each used successfully (so caches hold it as valid) before revocation."""
    from twig_auth.apikeys.models import ApiKey
    from twig_auth.apikeys.services import revoke_api_key
    from twig_auth.core.context import RequestContext

    row, key = issue_key(creator_pk, "soak-revoked")
    for _ in range(8):
        assert http("GET", "/api/agents", headers={"Authorization": f"Bearer {key}"}).status == 200
    pair = http("POST", "/api/auth/token", body={"email": "owner@free.test", "password": PASSWORD}).json()
    for _ in range(8):
        answer = http("GET", "/api/agents", headers={"Authorization": f"Bearer {pair['access_token']}"})
        assert answer.status == 200, answer.body[:200]
    jar = Jar()
    assert page_login_ok(page_login(http, "revoked-session@acme.test", jar, "127.0.0.1")[0])
    for _ in range(4):
        assert http("GET", "/", jar=jar).status == 200
    # revoke: the key in the database and cache, the token family over the API, the session by signing out
    fresh_connections()
    revoke_api_key(key=ApiKey.objects.get(pk=row.pk), context=RequestContext.system())
    fresh_connections()
    assert http("POST", "/api/auth/token/revoke", body={"token": pair["refresh_token"]}).status == 200
    out = http("POST", "/logout/", jar=Jar(dict(jar.cookies)), headers={"X-CSRFToken": jar.cookies["csrftoken"]})
    assert out.status == 302, (out.status, out.body[:200])
    world.revoked_key, world.revoked_access, world.revoked_refresh = key, pair["access_token"], pair["refresh_token"]
    world.revoked_session = jar  # the cookie of the signed-out session, kept by a thief


# -- load ---------------------------------------------------------------------------------------------

class Driver(threading.Thread):
    name_: str = "driver"
    interval: float = 1.0

    def __init__(self, http: Http, world: World, rec: Recorder, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.http, self.world, self.rec, self.stop = http, world, rec, stop

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.step()
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_at = time.monotonic()

    def step(self) -> None:
        raise NotImplementedError


class ApiKeyDriver(Driver):
    interval = 2 / API_RATE  # two threads share the rate
    keys = itertools.count()

    def step(self) -> None:
        i = next(self.keys)
        key = self.world.read_keys[i % len(self.world.read_keys)]
        path = "/api/agents" if i % 2 else f"/api/agents/{self.world.agent_ids[i % len(self.world.agent_ids)]}"
        self.rec.send("api key", lambda: self.http("GET", path, headers={"Authorization": f"Bearer {key}"}))


class QueryDriver(Driver):
    interval = 1 / QUERY_RATE
    count = itertools.count()

    def step(self) -> None:
        i = next(self.count)
        key = self.world.read_keys[i % len(self.world.read_keys)]
        body = {"agent": self.world.agent_ids[0], "question": ("How do refunds work?", "opening hours?")[i % 2]}
        self.rec.send("query", lambda: self.http("POST", "/api/query", body=body,
                                                 headers={"Authorization": f"Bearer {key}"}))


class LoginDriver(Driver):
    interval = LOGIN_INTERVAL
    count = itertools.count()

    def step(self) -> None:
        i = next(self.count)
        source = SOURCE_IPS[i % len(SOURCE_IPS)]
        email = self.world.login_emails[i % len(self.world.login_emails)]
        kind = i % 4
        if kind in (0, 1):
            answer = self.rec.send("sign-in api", lambda: self.http(
                "POST", "/api/auth/token", body={"email": email, "password": PASSWORD}, source=source))
            self.rec.audit("LOGIN_SUCCESS", email, answer, success=200)
        elif kind == 2:
            answer, posted = page_login(self.http, email, Jar(), source, self.rec)
            if posted:
                self.rec.audit("LOGIN_SUCCESS", email, answer,
                               success=(answer.status,) if page_login_ok(answer) else ())
        else:
            ghost = f"ghost-{i}-{secrets.token_hex(3)}@acme.test"
            answer = self.rec.send("sign-in api", lambda: self.http(
                "POST", "/api/auth/token", body={"email": ghost, "password": PASSWORD}, source=source))
            self.rec.audit("LOGIN_FAILURE", ghost, answer, success=401)


class RefreshDriver(Driver):
    interval = REFRESH_INTERVAL

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.pairs: dict[str, dict[str, str] | None] = {email: None for email in self.world.refresh_emails}
        self.turn = itertools.count()

    def login(self, email: str) -> None:
        answer = self.rec.send("sign-in api", lambda: self.http(
            "POST", "/api/auth/token", body={"email": email, "password": PASSWORD}, source=REFRESH_IPS[0]))
        self.rec.audit("LOGIN_SUCCESS", email, answer, success=200)
        if answer.status == 200:
            self.pairs[email] = answer.json()

    def step(self) -> None:
        turn = next(self.turn)
        email = self.world.refresh_emails[turn % len(self.world.refresh_emails)]
        pair = self.pairs[email]
        if pair is None:
            self.login(email)
            return
        answer = self.rec.send("refresh", lambda: self.http(
            "POST", "/api/auth/token/refresh", body={"refresh_token": pair["refresh_token"]},
            source=REFRESH_IPS[turn % len(REFRESH_IPS)]))
        if answer.status == 200:
            self.pairs[email] = new = answer.json()
            self.rec.send("access token", lambda: self.http(
                "GET", "/api/agents", headers={"Authorization": f"Bearer {new['access_token']}"}))
        elif answer.status in (401, 403):
            # after an ambiguous rotation (503 during a PostgreSQL outage) the old token may have been used up
            self.rec.note(f"refresh family ended: {answer.code}")
            self.pairs[email] = None


class RevokedChecker(Driver):
    interval = CHECK_INTERVAL
    count = itertools.count()
    sources = itertools.count()

    def step(self) -> None:
        w, i = self.world, next(self.count) % 4
        if i == 0:
            answer = self.rec.send(REVOKED[0], lambda: self.http(
                "GET", "/api/agents", headers={"Authorization": f"Bearer {w.revoked_key}"}))
        elif i == 1:
            answer = self.rec.send(REVOKED[1], lambda: self.http(
                "GET", "/api/agents", headers={"Authorization": f"Bearer {w.revoked_access}"}))
        elif i == 2:
            source = CHECKER_IPS[next(self.sources) % len(CHECKER_IPS)]
            answer = self.rec.send(REVOKED[2], lambda: self.http(
                "POST", "/api/auth/token/refresh", body={"refresh_token": w.revoked_refresh}, source=source))
        else:
            answer = self.rec.send(REVOKED[3], lambda: self.http("GET", "/", jar=Jar(dict(w.revoked_session.cookies))))
        # the API ones: any 2xx; the signed-out cookie: the home page itself (else a 302 to the login page)
        accepted, what = (answer.status == 200 if i == 3 else 200 <= answer.status < 300), REVOKED[i]
        if accepted:
            with self.rec.lock:
                self.rec.accepted_revoked.append(f"{self.rec.now():.1f}s {what}: {answer.status}")


# -- faults -------------------------------------------------------------------------------------------

@dataclass
class Step:
    at: float  # fraction of the run
    name: str
    hold: float = 0.0  # fraction of the run the fault lasts (0: an instant action)


SCHEDULE = (
    Step(0.08, "redis stopped", 0.09),
    Step(0.36, "burst"),
    Step(0.38, "redis frozen", 0.06),
    Step(0.62, "burst"),
    Step(0.64, "pg restart"),
    Step(0.72, "pg stopped", 0.06),
    Step(0.97, "burst"),
)


class Faults(threading.Thread):
    def __init__(self, seconds: float, pg: PrivatePostgres, redis: PrivateRedis, server: Gunicorn, http: Http,
                 world: World, rec: Recorder) -> None:
        super().__init__(daemon=True)
        self.seconds, self.pg, self.redis, self.server = seconds, pg, redis, server
        self.http, self.world, self.rec = http, world, rec
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for step in SCHEDULE:
                delay = step.at * self.seconds - self.rec.now()
                if delay > 0:
                    time.sleep(delay)
                hold = max(5.0, step.hold * self.seconds)
                if step.name == "burst":
                    self.burst()
                elif step.name == "redis stopped":
                    w = self.rec.window("redis stopped")
                    self.redis.stop()
                    time.sleep(hold)
                    self.redis.start()
                    self.rec.close(w)
                elif step.name == "redis frozen":
                    w = self.rec.window("redis frozen")
                    self.redis.pause()
                    time.sleep(hold)
                    self.redis.resume()
                    self.rec.close(w)
                elif step.name == "pg restart":
                    w = self.rec.window("pg restart", pg=True)
                    self.pg.restart("fast")
                    self.rec.close(w)
                elif step.name == "pg stopped":
                    w = self.rec.window("pg stopped", pg=True)
                    self.pg.stop("fast")
                    time.sleep(hold)
                    self.pg.start()
                    self.rec.close(w)
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            self.error = exc

    def recovered(self, timeout: float) -> tuple[bool, str]:
        """Wait until every worker that logged the Redis outage has logged its end; say how it stands."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.server.read_log()
            down, back = log.count("Redis is unavailable"), log.count("Redis is reachable again")
            if back >= down or time.monotonic() > deadline:
                return back >= down, f"{back}/{down} worker outages ended"
            time.sleep(0.5)

    def burst(self) -> None:
        ready, state = self.recovered(timeout=45)
        started = self.rec.now()
        _, key = issue_key(self.world.burst_owner_pk, f"burst-{len(self.rec.bursts)}")
        auth = {"Authorization": f"Bearer {key}"}
        first = self.http("GET", "/api/agents", headers=auth)  # pays the key's one hash check
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: self.http("GET", "/api/agents", headers=auth),
                                    range(BURST_REQUESTS)))
        statuses = collections.Counter(a.status for a in [first, *answers])
        self.rec.bursts.append({"at": started, "ready": ready, "state": state, "statuses": dict(statuses),
                                "admitted": statuses.get(200, 0), "refused": statuses.get(429, 0)})


# -- report -------------------------------------------------------------------------------------------

def phase_of(t: float, windows: list[Window]) -> str:
    name = "steady"
    for w in windows:
        if t >= w.start:
            name = w.name if w.end is None or t <= w.end else f"after {w.name}"
    return name


def in_pg_window(s: Sample, windows: list[Window]) -> bool:
    """Whether the request was in flight at some moment of a PostgreSQL outage (or its grace after)."""
    return any(w.pg and s.t <= (w.end if w.end is not None else float("inf")) + PG_GRACE and s.end >= w.start
               for w in windows)


def status_table(rec: Recorder) -> tuple[str, dict[str, int], list[str]]:
    offenders: list[str] = []
    phases: dict[str, collections.Counter[str]] = {}
    spans: dict[str, list[float]] = {}
    totals = collections.Counter()
    for s in rec.samples:
        phase = phase_of(s.t, rec.windows)
        bucket = phases.setdefault(phase, collections.Counter())
        spans.setdefault(phase, [s.t, s.t])
        spans[phase][0], spans[phase][1] = min(spans[phase][0], s.t), max(spans[phase][1], s.t)
        col = ("errors" if s.status == 0 else "2xx" if s.status < 300 else "3xx" if s.status < 400 else
               str(s.status) if s.status in (401, 403, 404, 429, 503) else "4xx" if s.status < 500 else "5xx")
        bucket[col] += 1
        bucket["requests"] += 1
        if s.status >= 500 or s.status == 0:
            if not in_pg_window(s, rec.windows):
                totals["5xx outside"] += 1
                offenders.append(f"{s.t:.1f}-{s.end:.1f} s {s.driver}: {s.status} {s.code} (outside)")
            elif not s.unavailable:
                totals["bad 5xx inside"] += 1
                offenders.append(f"{s.t:.1f}-{s.end:.1f} s {s.driver}: {s.status} {s.code} (inside)")
            else:
                totals["503 inside"] += 1
        if s.status == 0:
            totals["transport errors"] += 1
    cols = ["requests", "2xx", "3xx", "401", "403", "404", "429", "4xx", "503", "5xx", "errors"]
    lines = ["| phase | from | to | " + " | ".join(cols) + " | rps |", "|---" * (len(cols) + 4) + "|"]
    order = sorted(phases, key=lambda p: spans[p][0])
    for phase in order:
        c = phases[phase]
        a, b = spans[phase]
        rps = c["requests"] / max(b - a, 1e-9)
        lines.append(f"| {phase} | {a:.0f} s | {b:.0f} s | " + " | ".join(f"{c[k]:,}" if c[k] else "·" for k in cols)
                     + f" | {rps:.1f} |")
    all_ = collections.Counter()
    for c in phases.values():
        all_.update(c)
    lines.append("| **all** | | | " + " | ".join(f"**{all_[k]:,}**" if all_[k] else "·" for k in cols) + " | |")
    return "\n".join(lines), dict(totals), offenders


def driver_table(rec: Recorder) -> str:
    by: dict[str, list[Sample]] = collections.defaultdict(list)
    for s in rec.samples:
        by[s.driver].append(s)
    lines = ["| driver | requests | statuses | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    for name, samples in sorted(by.items()):
        ms = sorted(s.ms for s in samples)
        statuses = collections.Counter(f"{s.status}{' ' + s.code if s.code else ''}" for s in samples)
        shown = ", ".join(f"{k}: {v:,}" for k, v in statuses.most_common())
        lines.append(f"| {name} | {len(samples):,} | {shown} | {ms[len(ms) // 2]:.0f} | "
                     f"{ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.0f} | {ms[-1]:.0f} |")
    return "\n".join(lines)


def audit_counts(since: dt.datetime) -> collections.Counter[tuple[str, str]]:
    from django.db.models import Count

    from twig_auth.audit.models import AuditEvent

    fresh_connections()
    rows = (AuditEvent.objects.filter(timestamp__gte=since, event__in=["LOGIN_SUCCESS", "LOGIN_FAILURE"])
            .values_list("event", "email").annotate(n=Count("id")))
    return collections.Counter({(event, email): n for event, email, n in rows})


def audit_check(rec: Recorder, stored: collections.Counter[tuple[str, str]]) -> dict[str, int]:
    keys = set(rec.acked) | set(rec.ambiguous) | set(stored)
    lost = sum(max(0, rec.acked[k] - stored[k]) for k in keys)
    extra = sum(max(0, stored[k] - rec.acked[k]) for k in keys)
    unexplained = sum(max(0, stored[k] - rec.acked[k] - rec.ambiguous[k]) for k in keys)
    return {"acknowledged": sum(rec.acked.values()), "stored": sum(stored.values()),
            "ambiguous answers": sum(rec.ambiguous.values()), "lost": lost, "extra": extra,
            "unexplained extra": unexplained,
            "success acked": sum(v for (e, _), v in rec.acked.items() if e == "LOGIN_SUCCESS"),
            "failure acked": sum(v for (e, _), v in rec.acked.items() if e == "LOGIN_FAILURE"),
            "success stored": sum(v for (e, _), v in stored.items() if e == "LOGIN_SUCCESS"),
            "failure stored": sum(v for (e, _), v in stored.items() if e == "LOGIN_FAILURE")}


def log_counts(log: str) -> dict[str, int]:
    patterns = {"Redis outage warnings": "Redis is unavailable", "Redis recoveries": "Redis is reachable again",
                "database outage warnings": "The database is unavailable",
                "Internal Server Error lines": "Internal Server Error", "tracebacks": "Traceback (most recent",
                "worker timeouts": "WORKER TIMEOUT"}
    return {name: log.count(text) for name, text in patterns.items()}


def report(args: argparse.Namespace, rec: Recorder, seconds: float, totals: dict[str, int], table: str,
           offenders: list[str], audit: dict[str, int], logs: dict[str, int]) -> bool:
    print(f"# Soak with faults: {seconds / 60:.1f} min, gunicorn -w {args.workers} sync, private PostgreSQL "
          f"+ Redis, {os.cpu_count()} CPUs\n")
    print("## Faults\n")
    print("| fault | from | to |\n|---|---|---|")
    for w in rec.windows:
        print(f"| {w.name} | {w.start:.1f} s | {w.end:.1f} s |" if w.end is not None else f"| {w.name} | "
              f"{w.start:.1f} s | (open) |")
    print("\n## Requests by status per phase (by the time each was sent)\n")
    print(table)
    print("\n## Requests by driver\n")
    print(driver_table(rec))
    bursts = rec.bursts
    checks = [
        ("5xx or transport errors outside PostgreSQL outage windows", totals.get("5xx outside", 0), "0",
         totals.get("5xx outside", 0) == 0),
        ("5xx inside them other than 503 service_unavailable", totals.get("bad 5xx inside", 0), "0",
         totals.get("bad 5xx inside", 0) == 0),
        ("503 service_unavailable during PostgreSQL outages", totals.get("503 inside", 0), "reported", True),
        ("transport errors (refused, reset, timeout)", totals.get("transport errors", 0), "0",
         totals.get("transport errors", 0) == 0),
        ("revoked credentials accepted", len(rec.accepted_revoked), "0", not rec.accepted_revoked),
        ("revoked-credential checks made (each of the four kinds)",
         ", ".join(f"{sum(1 for s in rec.samples if s.driver == kind)}" for kind in REVOKED), "> 0 each",
         all(any(s.driver == kind for s in rec.samples) for kind in REVOKED)),
        ("sign-in audit events: acknowledged / stored",
         f"{audit['acknowledged']:,} / {audit['stored']:,} (success {audit['success acked']:,}/"
         f"{audit['success stored']:,}, failure {audit['failure acked']:,}/{audit['failure stored']:,})",
         "stored ≥ acknowledged", audit["lost"] == 0),
        ("audit events lost (acknowledged, not stored)", audit["lost"], "0", audit["lost"] == 0),
        ("audit events beyond the acknowledged", f"{audit['extra']} (ambiguous answers: "
         f"{audit['ambiguous answers']})", "≤ ambiguous", audit["unexplained extra"] == 0),
    ]
    for i, b in enumerate(bursts):
        checks.append((f"burst {i + 1} at {b['at']:.0f} s ({b['state']}): admitted of {BURST_REQUESTS + 1}",
                       f"{b['admitted']} (statuses {b['statuses']})", str(BURST_LIMIT),
                       b["admitted"] == BURST_LIMIT and b["refused"] == BURST_REQUESTS + 1 - BURST_LIMIT))
    checks.append(("bursts run", len(bursts), str(sum(1 for s in SCHEDULE if s.name == "burst")),
                   len(bursts) == sum(1 for s in SCHEDULE if s.name == "burst")))
    print("\n## Invariants\n")
    print("| check | value | expected | ok |\n|---|---|---|---|")
    for name, value, expected, ok in checks:
        print(f"| {name} | {value} | {expected} | {'yes' if ok else '**NO**'} |")
    print("\n## Server log\n")
    print(", ".join(f"{k}: {v}" for k, v in logs.items()))
    if rec.notes:
        print("\nNotes: " + "; ".join(f"{k} ×{v}" for k, v in rec.notes.most_common()))
    if rec.accepted_revoked:
        print("\nRevoked credentials accepted:\n" + "\n".join(f"- {x}" for x in rec.accepted_revoked[:20]))
    if offenders:
        print("\nUnexpected 5xx (first 20):\n" + "\n".join(f"- {x}" for x in offenders[:20]))
    if rec.transport:
        print("\nTransport errors (first 20):\n" + "\n".join(f"- {x}" for x in rec.transport))
    failed = [name for name, _, _, ok in checks if not ok]
    print(f"\n{'ALL INVARIANTS HOLD' if not failed else 'FAILED: ' + '; '.join(failed)}")
    return not failed


# -- main ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak the reference project with faults; print a report.")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the load (default 3)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server logs)")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    if seconds < 20:
        parser.error("--minutes must be at least 0.34 (20 s): the schedule needs room for its faults")

    workdir = Path(tempfile.mkdtemp(prefix="twig-soak-"))
    workdir.chmod(0o755)  # the cluster inside belongs to the postgres user when we are root
    pg = redis = server = None
    try:
        print(f"setting up in {workdir} …", file=sys.stderr, flush=True)
        pg = PrivatePostgres(workdir)
        pg.init()
        pg.start()
        pg.createdb("twig_soak")
        redis = PrivateRedis()
        redis.start()
        env = {"DATABASE_URL": pg.url("twig_soak"), "REDIS_URL": redis.url(0), "DJANGO_DEBUG": "0",
               "DJANGO_SECRET_KEY": secrets.token_urlsafe(40), "TWIG_LOG_LEVEL": "INFO", "LOG_LEVEL": "WARNING",
               "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
               "CACHE_KEY_PREFIX": "twig-soak"}
        manage(env, "migrate", "-v", "0")
        setup_django(env)
        world = seed()
        log = open(workdir / "gunicorn.log", "w+b")  # noqa: SIM115  (closed with the directory)
        server = Gunicorn(env, workers=args.workers, log=log)
        server.start()
        http = Http(server.port)
        revoke_credentials(http, world, world.burst_owner_pk)
        for key in world.read_keys:  # each key's one hash check, before the clock starts
            http("GET", "/api/agents", headers={"Authorization": f"Bearer {key}"})
        since = dt.datetime.now(dt.UTC)  # sign-in audit events from here on are the load's
        print(f"load for {seconds:.0f} s …", file=sys.stderr, flush=True)
        rec = Recorder()
        stop = threading.Event()
        drivers = [ApiKeyDriver(http, world, rec, stop), ApiKeyDriver(http, world, rec, stop),
                   QueryDriver(http, world, rec, stop), LoginDriver(http, world, rec, stop),
                   RefreshDriver(http, world, rec, stop), RevokedChecker(http, world, rec, stop)]
        faults = Faults(seconds, pg, redis, server, http, world, rec)
        for d in drivers:
            d.start()
        faults.start()
        while rec.now() < seconds or faults.is_alive():
            time.sleep(0.5)
            if faults.error is not None:
                break
        stop.set()
        elapsed = rec.now()
        for d in drivers:
            d.join(timeout=60)
        faults.join(timeout=120)
        if faults.error is not None:
            raise faults.error
        server.stop()  # graceful: buffered key usage is written on the way out
        logs = log_counts(server.read_log())
        table, totals, offenders = status_table(rec)
        audit = audit_check(rec, audit_counts(since))
        ok = report(args, rec, elapsed, totals, table, offenders, audit, logs)
        if args.keep:
            print(f"\nlogs kept in {workdir}")
        return 0 if ok else 1
    except ServerError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
        if redis is not None:
            with contextlib.suppress(Exception):
                redis.stop()
        if pg is not None:
            if args.keep:
                try:
                    if pg.running():
                        pg.stop("immediate")
                except ServerError:
                    pass
            else:
                pg.cleanup()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
