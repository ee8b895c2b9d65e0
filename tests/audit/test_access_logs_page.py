"""Settings → Security → Access logs: every audit event of the org for its admins, filtered, paged, downloadable."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest

from tests.pages.conftest import text
from tests.support.clients import signed_in
from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.context import RequestContext

LOGS = "/settings/security/access-logs/"
DOWNLOAD = "/settings/security/access-logs/download/"
T0 = dt.datetime(2030, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def admin(org, make_member):
    return make_member(org, "admin", email="ada@acme.test")


def rows(response) -> list[str]:
    return re.findall(r'<tr class="access-log-row" data-event-id="\d+" data-event="([A-Z_]+)">', text(response))


def seed(org, n: int, event: str = Event.GROUP_UPDATED, *, start: dt.datetime = T0, ip: str = "198.51.100.1",
         email: str | None = None) -> None:
    with clock.frozen(start) as frozen:
        for i in range(n):
            record(event, context=RequestContext(ip=ip), org=org, email=email, details={"i": i, "note": "<b>x</b>"})
            frozen.advance(minutes=1)


def test_admins_see_every_event_of_their_org_only(org, admin, make_org, make_member):
    seed(org, 2, Event.LOGIN_FAILURE, email="ann@acme.test")
    seed(make_org("globex"), 1, Event.LOGIN_FAILURE, email="gus@globex.test")
    response = signed_in(admin).get(LOGS)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    body = text(response)
    assert "ann@acme.test" in body and "gus@globex.test" not in body
    assert "LOGIN_FAILURE" in rows(response) and "MEMBER_ADDED" in rows(response)
    assert "note: &lt;b&gt;x&lt;/b&gt;" in body, "details are escaped"
    for field in ("id_event", "id_user", "id_ip", "id_since", "id_until"):
        assert f'<label for="{field}">' in body


def test_members_who_are_not_admins_get_the_forbidden_page(org, make_member, client):
    response = signed_in(make_member(org, "manager")).get(LOGS)
    assert response.status_code == 403 and "Only admins" in text(response)
    assert signed_in(make_member(org, "user")).get(DOWNLOAD, {"format": "csv"}).status_code == 403
    assert client.get(LOGS)["Location"].startswith("/login/")


def test_filters_narrow_the_list(org, admin):
    seed(org, 3, Event.LOGIN_FAILURE, email="ann@acme.test", ip="203.0.113.5")
    seed(org, 2, Event.IP_BLOCKED, ip="2001:db8::1", start=T0 + dt.timedelta(days=2))
    client = signed_in(admin)
    assert rows(client.get(LOGS, {"event": "IP_BLOCKED"})) == ["IP_BLOCKED"] * 2
    assert rows(client.get(LOGS, {"user": "ANN@acme.test"})) == ["LOGIN_FAILURE"] * 3
    assert rows(client.get(LOGS, {"ip": "203.0.113.5"})) == ["LOGIN_FAILURE"] * 3
    # dates are whole days, both included
    assert rows(client.get(LOGS, {"since": "2030-03-03", "until": "2030-03-03"})) == ["IP_BLOCKED"] * 2
    assert rows(client.get(LOGS, {"since": "2030-03-01", "until": "2030-03-02"})) == ["LOGIN_FAILURE"] * 3


def test_the_blocked_requests_preset_keeps_the_ip_block_view(org, admin):
    from twig_auth.netaccess import enforce  # noqa: F401  (the event is the one enforce writes)

    record(Event.IP_BLOCKED, context=RequestContext(ip="203.0.113.9"), org=org,
           details={"credential": "api_key", "key_id": "abc123", "blocked_by": "api_key", "path": "/api/agents",
                    "method": "GET"})
    client = signed_in(admin)
    page = text(client.get(LOGS))
    preset = re.search(r'<a href="([^"]+)"[^>]*>blocked requests</a>', page).group(1)
    blocked = client.get(LOGS + html.unescape(preset))
    assert rows(blocked) == ["IP_BLOCKED"] and "Blocked requests" in text(blocked)
    assert "API key abc123 (key&#x27;s own list) · GET /api/agents" in text(blocked)


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"ip": "not-an-ip"}, "ip", "Enter a single IPv4 or IPv6 address."),
    ({"since": "someday"}, "since", "Enter a valid date."),
    ({"user": "abc"}, "user", "Give a user id or an email address."),
    ({"since": "2030-03-05", "until": "2030-03-01"}, "until", "Must be later than since."),
    ({"event": "NOPE"}, "event", "Select a valid choice."),
    ({"until": "9999-12-31"}, "until", "Use an ISO 8601 date"),
])
def test_bad_filters_are_field_errors_and_list_nothing(org, admin, params, field, message):
    seed(org, 1)
    response = signed_in(admin).get(LOGS, params)
    assert response.status_code == 200
    body = text(response)
    errors = re.search(rf'<ul class="field__errors" id="id_{field}_error">(.*?)</ul>', body, re.S)
    assert errors and message in errors.group(1)
    assert not rows(response) and "Correct the filters" in body
    assert "Download CSV" not in body, "no unfiltered download offered for a bad filter"


def test_pages_go_older_newer_and_back_to_the_newest(org, admin):
    seed(org, 120)
    client = signed_in(admin)
    first = client.get(LOGS, {"event": "GROUP_UPDATED"})
    assert len(rows(first)) == 50 and 'rel="prev"' not in text(first)

    def link(response, rel: str) -> str:
        return LOGS + html.unescape(re.search(rf'href="([^"]+)" rel="{rel}"', text(response)).group(1))

    second = client.get(link(first, "next"))
    third = client.get(link(second, "next"))
    assert len(rows(second)) == 50 and len(rows(third)) == 20 and 'rel="next"' not in text(third)
    back = client.get(link(third, "prev"))
    assert text(back).count("access-log-row") == 50
    ids = lambda r: re.findall(r'data-event-id="(\d+)"', text(r))  # noqa: E731
    assert ids(back) == ids(second)
    assert "event=GROUP_UPDATED" in link(third, "prev")  # the filters ride along
    stale = client.get(LOGS, {"cursor": "garbage"})
    assert "out of date" in text(stale) and len(rows(stale)) == 50


def test_download_links_carry_the_filters_and_stream_every_match(org, admin):
    seed(org, 60, Event.LOGIN_FAILURE, email="ann@acme.test")
    seed(org, 5)
    client = signed_in(admin)
    page = text(client.get(LOGS, {"event": "LOGIN_FAILURE", "since": "2030-03-01"}))
    jsonl = html.unescape(re.search(r'href="([^"]+)"[^>]*>Download JSON Lines', page).group(1))
    csv_link = html.unescape(re.search(r'href="([^"]+)"[^>]*>Download CSV', page).group(1))
    assert jsonl.startswith(DOWNLOAD) and "event=LOGIN_FAILURE" in jsonl and "format=jsonl" in jsonl
    response = client.get(jsonl)
    assert response["Content-Type"] == "application/x-ndjson" and "attachment" in response["Content-Disposition"]
    records = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert len(records) == 60 and {r["event"] for r in records} == {"LOGIN_FAILURE"}
    response = client.get(csv_link)
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("id,timestamp,event,") and len(lines) == 61


def test_a_bad_download_goes_back_to_the_page_with_a_message(org, admin):
    client = signed_in(admin)
    response = client.get(DOWNLOAD, {"format": "xml"}, follow=True)
    assert response.redirect_chain[-1][0] == LOGS
    assert "Choose JSON Lines or CSV" in text(response)
    assert client.get(DOWNLOAD, {"format": "csv", "ip": "nope"}).status_code == 302
