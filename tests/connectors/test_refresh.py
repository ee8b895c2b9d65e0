"""Refresh: an expired access token is refreshed with the refresh token (rotated ones stored), a refused refresh
token turns the connection into ``connection_failed``, an unreachable provider changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.sso.oidc_peer import free_port
from twig_auth.audit.models import AuditEvent
from twig_auth.connectors.models import OAuthToken
from twig_auth.connectors.providers import url_problem
from twig_auth.connectors.tokens import access_token_for
from twig_auth.core import clock
from twig_auth.exceptions import ConnectionFailed, ConnectorUnavailable, NotConnected

from .conftest import connect

pytestmark = pytest.mark.django_db
HOUR = dt.timedelta(hours=1)


def token_of(org, source) -> str:
    return access_token_for(org=org, provider=source.kind, subject=source.pk)


def test_a_fresh_access_token_is_used_as_it_is(web, org, configured, make_source):
    source = make_source(org)
    stored = connect(web, source)
    before = configured.grants("refresh_token")
    assert token_of(org, source) == stored.access_token
    assert configured.grants("refresh_token") == before


def test_an_expired_access_token_is_refreshed_once(web, org, configured, make_source):
    source = make_source(org)
    with clock.frozen() as frozen:
        stored = connect(web, source)
        before = configured.grants("refresh_token")
        frozen.advance(seconds=3600 - 59)  # inside the 60 s leeway: refreshed before it expires
        new = token_of(org, source)
        assert new != stored.access_token and configured.grants("refresh_token") == before + 1
        assert token_of(org, source) == new and configured.grants("refresh_token") == before + 1
    row = OAuthToken.objects.get(pk=stored.pk)
    assert row.access_token == new and row.refresh_token == stored.refresh_token  # not rotated by this OP
    assert row.version == stored.version + 1 and row.refresh_lease_id == "" and row.refresh_lease_until is None
    assert row.last_refreshed_at == frozen.current and row.expires_at == frozen.current + HOUR
    assert configured.userinfo(new).status_code == 200
    event = AuditEvent.objects.get(event="CONNECTOR_REFRESHED")
    assert event.details == {"provider": "google_drive", "subject": source.pk, "rotated": False, "expiresIn": 3600}


def test_a_rotated_refresh_token_is_stored(web, org, rotating_op, use_op, make_source):
    use_op(rotating_op)
    source = make_source(org)
    with clock.frozen() as frozen:
        stored = connect(web, source)
        old_refresh = stored.refresh_token
        frozen.advance(hours=2)
        token_of(org, source)
    row = OAuthToken.objects.get(pk=stored.pk)
    assert row.refresh_token != old_refresh and rotating_op.active(row.refresh_token)
    assert not rotating_op.active(old_refresh)
    assert AuditEvent.objects.get(event="CONNECTOR_REFRESHED").details["rotated"] is True


def test_a_refresh_token_revoked_at_the_provider_fails_the_connection(web, org, configured, make_source, api):
    source = make_source(org)
    with clock.frozen() as frozen:
        stored = connect(web, source)
        configured.revoke(stored.refresh_token)  # the user removed the app in their account
        frozen.advance(hours=2)
        with pytest.raises(ConnectionFailed):
            token_of(org, source)
        with pytest.raises(ConnectionFailed):  # and stays failed without asking the provider again
            token_of(org, source)
    row = OAuthToken.objects.get(pk=stored.pk)
    assert row.status == "connection_failed" and row.access_token == "" and row.refresh_token == ""
    assert "invalid_grant" in row.last_error and row.refresh_lease_id == ""
    event = AuditEvent.objects.get(event="CONNECTOR_REFRESH_FAILED")
    assert event.details["reason"] == "the provider refused the grant (invalid_grant)"
    assert event.details["status"] == "connection_failed"
    assert configured.refused("refresh_token") >= 1
    body = api.get(f"/api/data-sources/{source.pk}").json()
    assert body["connection_status"] == "connection_failed"
    page = web.get("/data-sources/")
    assert "Connection failed — reconnect".encode() in page.content and b">Reconnect<" in page.content


def test_a_token_refused_by_the_api_is_refreshed_and_then_fails_the_connection(web, org, configured, make_source,
                                                                                api):
    source = make_source(org)
    stored = connect(web, source)
    configured.revoke(stored.refresh_token)  # revokes the whole grant: the access token dies too
    assert configured.userinfo(stored.access_token).status_code == 401
    response = api.post(f"/api/data-sources/{source.pk}/sync")  # our access token has not expired yet
    assert response.status_code == 409 and response.json()["code"] == "connection_failed"
    assert OAuthToken.objects.get(pk=stored.pk).status == "connection_failed"
    assert api.get(f"/api/data-sources/{source.pk}").json()["status"] == "idle"


def test_reconnecting_a_failed_connection_makes_it_connected_again(web, org, configured, make_source):
    source = make_source(org)
    stored = connect(web, source)
    OAuthToken.objects.filter(pk=stored.pk).update(status="connection_failed", access_token="", refresh_token="")
    assert connect(web, source).status == "connected"
    assert token_of(org, source)


def expire(token: OAuthToken) -> None:
    """Make the stored access token expired. (Changing settings resets a frozen clock, so these tests move the
    expiry instead of the clock.)"""
    OAuthToken.objects.filter(pk=token.pk).update(expires_at=clock.now() - HOUR)


def test_an_unreachable_provider_changes_nothing(web, org, configured, use_op, make_source, api):
    source = make_source(org)
    stored = connect(web, source)
    use_op(configured, token_endpoint=f"http://127.0.0.1:{free_port()}/token")
    expire(stored)
    with pytest.raises(ConnectorUnavailable):
        token_of(org, source)
    response = api.post(f"/api/data-sources/{source.pk}/sync")
    assert response.status_code == 503 and response.json()["code"] == "connector_unavailable"
    row = OAuthToken.objects.get(pk=stored.pk)
    assert row.status == "connected" and row.refresh_token == stored.refresh_token
    assert row.refresh_lease_id == "" and "could not be reached" in row.last_error
    use_op(configured)  # the provider is back: the next caller refreshes
    assert token_of(org, source) != stored.access_token
    events = list(AuditEvent.objects.filter(event="CONNECTOR_REFRESH_FAILED").values_list("details", flat=True))
    assert len(events) == 2 and all(e["status"] == "connected" for e in events)


def test_a_provider_failing_with_an_error_page_changes_nothing(web, org, configured, use_op, make_source):
    source = make_source(org)
    stored = connect(web, source)
    use_op(configured, token_endpoint=f"{configured.issuer}/no-such-endpoint")  # 404 from the provider
    expire(stored)
    with pytest.raises(ConnectorUnavailable, match="HTTP 404"):
        token_of(org, source)
    assert OAuthToken.objects.get(pk=stored.pk).status == "connected"


def test_a_wrong_client_secret_is_not_a_failed_connection(web, org, configured, use_op, make_source):
    source = make_source(org)
    stored = connect(web, source)
    use_op(configured, client_secret="wrong-secret")
    expire(stored)
    with pytest.raises(ConnectorUnavailable, match="client credentials"):
        token_of(org, source)
    assert OAuthToken.objects.get(pk=stored.pk).status == "connected"


def test_no_connection_is_not_connected(org, configured, make_source, api):
    source = make_source(org)
    with pytest.raises(NotConnected):
        token_of(org, source)
    response = api.post(f"/api/data-sources/{source.pk}/sync")
    assert response.status_code == 409 and response.json()["code"] == "not_connected"


def test_sync_calls_the_provider_with_the_token(web, org, configured, make_source, api):
    source = make_source(org, kind="slack", name="Chat")
    connect(web, source)
    response = api.post(f"/api/data-sources/{source.pk}/sync")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "synced" and response.json()["connection_status"] == "connected"
    assert AuditEvent.objects.filter(event="DATA_SOURCE_SYNCED", target_id=source.pk).count() == 1


@pytest.mark.parametrize(("url", "ok"), [
    ("https://oauth2.googleapis.com/token", True), ("http://127.0.0.1:9/token", True), ("http://localhost/x", True),
    ("http://[::1]:8/x", True), ("http://example.com/token", False), ("ftp://example.com/", False),
    ("https://user:pw@example.com/", False), ("https://example.com/#frag", False), ("", False), (None, False),
    ("https:///path", False),
])
def test_provider_urls_must_be_https_outside_loopback(url, ok):
    assert (url_problem(url) is None) is ok


def test_an_expired_token_without_a_refresh_token_fails_the_connection(web, org, configured, make_source):
    source = make_source(org)
    stored = connect(web, source)
    stored.refresh_token = ""
    stored.save()
    expire(stored)
    with pytest.raises(ConnectionFailed):
        token_of(org, source)
    row = OAuthToken.objects.get(pk=stored.pk)
    assert row.status == "connection_failed" and row.access_token == ""
    assert "no refresh token" in AuditEvent.objects.get(event="CONNECTOR_REFRESH_FAILED").details["reason"]


@pytest.fixture
def slack_shaped_api():
    """A local HTTP server answering like Slack's Web API: HTTP 200 {"ok": false, "error": …}; yields
    ``(url, seen)`` where ``seen`` collects the Authorization headers it received."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization", ""))
            body = json.dumps({"ok": False, "error": self.path.strip("/")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def test_a_slack_style_refusal_refreshes_once_then_gives_up(web, org, configured, use_op, make_source, api,
                                                             slack_shaped_api):
    url, seen = slack_shaped_api
    use_op(configured, api_probe_url=f"{url}/invalid_auth")
    source = make_source(org, kind="slack", name="Chat")
    stored = connect(web, source)
    before = configured.grants("refresh_token")
    response = api.post(f"/api/data-sources/{source.pk}/sync")
    assert response.status_code == 503 and "freshly refreshed" in response.json()["detail"]
    assert configured.grants("refresh_token") == before + 1
    row = OAuthToken.objects.get(pk=stored.pk)
    assert seen == [f"Bearer {stored.access_token}", f"Bearer {row.access_token}"]
    assert row.status == "connected"


def test_a_slack_style_error_is_not_a_success(web, org, configured, use_op, make_source, api, slack_shaped_api):
    url, _ = slack_shaped_api
    use_op(configured, api_probe_url=f"{url}/ratelimited")
    source = make_source(org, kind="slack", name="Chat")
    connect(web, source)
    response = api.post(f"/api/data-sources/{source.pk}/sync")
    assert response.status_code == 503 and "ratelimited" in response.json()["detail"]
    assert api.get(f"/api/data-sources/{source.pk}").json()["status"] == "idle"
