"""``GET /api/audit-events``: who may read it, filters, cursor pages, JSON Lines and CSV streams, bad input."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from tests.support.clients import signed_in
from twig_auth.apikeys.services import issue_api_key
from twig_auth.audit import chain
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.context import RequestContext

URL = "/api/audit-events"
HMAC_HASHER = "twig_auth.apikeys.hashers.HmacSha256KeyHasher"
RECORD_FIELDS = {"id", "timestamp", "event", "userId", "email", "ipAddress", "userAgent", "mfaUsed", "sessionId",
                 "org", "target", "details", "seq", "prevHash", "hash"}
T0 = dt.datetime(2030, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fast_keys(settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_HASHER": HMAC_HASHER}


@pytest.fixture
def admin(org, make_member):
    return make_member(org, "admin", email="ada@acme.test")


@pytest.fixture
def api(admin) -> Client:
    return signed_in(admin)


def error(response, status: int, code: str = "invalid") -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert body["code"] == code and body["detail"]
    return body


def seed(org, n: int, *, start: dt.datetime = T0, step: dt.timedelta = dt.timedelta(minutes=1), **kw) -> None:
    with clock.frozen(start) as frozen:
        for i in range(n):
            record(kw.get("event", Event.GROUP_UPDATED), context=RequestContext(ip=kw.get("ip", "198.51.100.1")),
                   org=org, email=kw.get("email"), details={"i": i})
            frozen.advance(seconds=step.total_seconds())


def test_admins_read_their_orgs_events_newest_first_with_the_chain_fields(api, org, make_org):
    seed(org, 3)
    seed(make_org("globex"), 2)
    response = api.get(URL)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["next"] is None
    results = body["results"]
    assert all(set(r) == RECORD_FIELDS for r in results)
    assert {r["org"] for r in results} == {org.pk}
    ordered = [(r["timestamp"], r["id"]) for r in results]
    assert ordered == sorted(ordered, reverse=True)
    stored = AuditEvent.objects.get(pk=results[0]["id"])
    assert results[0] == json.loads(json.dumps(stored.as_export()))
    assert results[0]["hash"] == chain.compute_hash(stored, results[0]["prevHash"])


def test_cursor_pages_walk_every_event_once_even_while_new_ones_arrive(api, org):
    seed(org, 11)
    total = AuditEvent.objects.filter(org=org).count()
    seen, url, pages = [], f"{URL}?limit=4", 0
    while url:
        body = api.get(url).json()
        seen += [r["id"] for r in body["results"]]
        pages += 1
        if pages == 1:
            seed(org, 2, start=T0 + dt.timedelta(days=1))  # newer events do not shift the pages
        url = body["next"]
        assert url is None or url.startswith("http://testserver/api/audit-events?")
    assert len(seen) == len(set(seen)) == total and pages == -(-total // 4)


def test_filters(api, org, admin, make_member):
    ann = make_member(org, "user", email="ann@acme.test")
    seed(org, 3, event=Event.LOGIN_FAILURE, email="ann@acme.test", ip="203.0.113.5")
    seed(org, 2, event=Event.IP_BLOCKED, ip="2001:db8::1", start=T0 + dt.timedelta(days=2))
    record(Event.ROLE_CHANGED, context=RequestContext(actor=admin.user), org=org, target=ann)

    def ids(**params) -> list[int]:
        response = api.get(URL, params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    events = AuditEvent.objects.filter(org=org)
    assert len(ids(event=["LOGIN_FAILURE", "IP_BLOCKED"])) == 5
    assert len(ids(event="login_failure,ip_blocked")) == 5
    assert len(ids(user="ANN@acme.test")) == events.filter(email="ann@acme.test").count() >= 3
    assert ids(user=str(admin.user_id)) == list(events.filter(user=admin.user).order_by("-timestamp", "-id")
                                                .values_list("pk", flat=True))
    assert len(ids(ip="2001:0db8::0001")) == 2
    assert len(ids(since="2030-03-03", until="2030-03-04")) == 2
    assert len(ids(since="2030-03-01T09:01:00Z", until="2030-03-01T10:02:00+01:00")) == 1
    assert len(ids(since="2030-03-01T09:01:00Z", until="2030-03-01T09:02:00")) == 1  # UTC without an offset
    about_ann = ids(target_type="twig_auth.membership", target_id=str(ann.pk))
    assert [AuditEvent.objects.get(pk=pk).event for pk in about_ann] == ["ROLE_CHANGED", "MEMBER_ADDED"]


@pytest.mark.parametrize(("params", "field"), [
    ({"event": "NOPE"}, "event"), ({"user": "abc"}, "user"), ({"user": "9" * 30}, "user"),
    ({"ip": "10.0.0.0/8"}, "ip"), ({"since": "yesterday"}, "since"), ({"until": "2030-13-01"}, "until"),
    ({"since": "2030-02-01", "until": "2030-01-01"}, "until"), ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"),
    ({"limit": "ten"}, "limit"), ({"cursor": "garbage"}, "cursor"), ({"cursor": "W10"}, "cursor"),
    ({"format": "xml"}, "format"), ({"target_id": "x" * 65}, "target_id"), ({"target_type": "a\x00b"}, "target_type"),
    ({"user": ["a@b.test", "c@d.test"]}, "user"), ({"until": "9999-12-31T23:00:00-05:00"}, "until"),
    ({"since": "0001-01-01T00:00:00+01:00"}, "since"), ({"since": "2030-01-01T00:00:00+25:00"}, "since"),
    ({"cursor": "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzAxOjAwIiwgMV0"}, "cursor"),
])
def test_bad_filters_are_400_naming_the_field(api, org, params, field):
    body = error(api.get(URL, params), 400)
    assert field in body["errors"], body


def test_who_may_read_it(org, admin, make_member, client):
    error(client.get(URL), 401, "not_authenticated")
    user = make_member(org, "manager", email="mia@acme.test")
    error(signed_in(user).get(URL), 403, "permission_denied")
    assert AuditEvent.objects.filter(event="AUTHORIZATION_DENIED", user=user.user).exists()
    _, read_key = issue_api_key(creator=admin, name="r", scopes=["read"], environment="live")
    error(client.get(URL, HTTP_AUTHORIZATION=f"Bearer {read_key}"), 403, "insufficient_scope")
    _, admin_key = issue_api_key(creator=admin, name="a", scopes=["admin"], environment="live")
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {admin_key}").status_code == 200
    token = client.post("/api/auth/token", {"email": "ada@acme.test", "password": PASSWORD},
                        content_type="application/json")
    assert token.status_code == 200, token.content
    access = token.json()["access_token"]
    response = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {access}")
    assert response.status_code == 200 and {r["org"] for r in response.json()["results"]} == {org.pk}


def test_json_lines_streams_every_matching_event(api, org):
    seed(org, 230)
    response = api.get(URL, {"format": "jsonl", "event": "GROUP_UPDATED"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="audit-events-acme-') and disposition.endswith('.jsonl"')
    lines = b"".join(response.streaming_content).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 230 and {r["event"] for r in records} == {"GROUP_UPDATED"}
    assert [r["details"]["i"] for r in records] == list(range(229, -1, -1))
    assert all(set(r) == RECORD_FIELDS for r in records)


def test_csv_has_a_header_and_defuses_formulas(api, org):
    seed(org, 2, event=Event.LOGIN_FAILURE, email="=HYPERLINK(\"http://evil\")")
    response = api.get(URL, {"format": "csv", "event": "LOGIN_FAILURE"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2
    assert rows[0]["email"] == "'=HYPERLINK(\"http://evil\")" and rows[0]["event"] == "LOGIN_FAILURE"
    assert json.loads(rows[0]["details"]) == {"i": 1} and rows[0]["mfaUsed"] == "false"
    stored = AuditEvent.objects.get(pk=rows[0]["id"])
    assert rows[0]["hash"] == stored.hash and rows[0]["seq"] == str(stored.seq)


def test_the_schema_documents_it(client, db):
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/audit-events"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"event", "user", "ip", "since", "until", "target_type",
                                                            "target_id", "limit", "cursor", "format"}
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "application/x-ndjson", "text/csv"}
    assert "400" in operation["responses"]
