"""Connect: the authorization-code flow with PKCE and a session-bound state against a real oidc-provider, and
every way a callback is refused (forged, replayed or expired state, another browser, access denied, bad code)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.db import connection
from django.test import Client

from twig_auth.audit.models import AuditEvent
from twig_auth.connectors.flow import SESSION_KEY, safe_return_path
from twig_auth.connectors.models import OAuthToken
from twig_auth.core import clock
from twig_project.workspace.models import DataSource

from .conftest import BASE, connect, play_op, signed_in, start

pytestmark = pytest.mark.django_db


def failure() -> AuditEvent:
    return AuditEvent.objects.filter(event="CONNECTOR_CONNECT_FAILED").latest("timestamp")


def test_connect_runs_the_code_flow_with_pkce_and_stores_encrypted_tokens(web, org, manager, configured,
                                                                           make_source):
    source = make_source(org)
    authorize = start(web, source)
    query = parse_qs(urlparse(authorize).query)
    assert authorize.startswith(configured.issuer + "/auth?")
    assert query["response_type"] == ["code"] and query["client_id"] == ["test-client"]
    assert query["redirect_uri"] == [f"{BASE}/connectors/callback/"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 43 and query["scope"] == ["openid email"]
    assert len(web.session[SESSION_KEY]) == 1  # the pending flow, bound to this session
    before = clock.now()
    response = web.get(play_op(authorize))
    assert response.status_code == 302 and response["Location"] == "/data-sources/"
    assert web.session[SESSION_KEY] == {}  # single use
    token = OAuthToken.objects.get(org=org, provider="google_drive", subject=source.pk)
    assert token.status == "connected" and token.connected_by == manager.user
    assert token.scope == "openid email" and token.token_type == "Bearer"
    assert before + dt.timedelta(seconds=3500) < token.expires_at <= clock.now() + dt.timedelta(seconds=3600)
    assert configured.active(token.access_token) and configured.active(token.refresh_token)
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM oauth_tokens WHERE id = %s", [token.pk])
        raw_access, raw_refresh = cursor.fetchone()
    for raw, plain in ((raw_access, token.access_token), (raw_refresh, token.refresh_token)):
        assert raw.startswith("tv1.") and plain not in raw
    event = AuditEvent.objects.get(event="CONNECTOR_CONNECTED")
    assert event.details == {"provider": "google_drive", "subject": source.pk, "scope": "openid email",
                             "reconnected": False, "refreshable": True, "expiresIn": 3600}
    assert event.user == manager.user and event.target_id == token.pk
    page = web.get("/data-sources/")
    assert b"Team drive" in page.content and b"Connected" in page.content and b"is connected" in page.content


def test_slack_connects_with_client_secret_post(web, org, configured, make_source):
    source = make_source(org, kind="slack", name="Workspace chat")
    token = connect(web, source)
    assert token.provider == "slack" and token.status == "connected" and token.refresh_token
    assert configured.userinfo(token.access_token).json()["sub"] == "alice"


def test_reconnecting_replaces_the_tokens_and_revokes_the_old_ones(web, org, configured, make_source,
                                                                    django_capture_on_commit_callbacks):
    source = make_source(org)
    first = connect(web, source)
    old_access, old_refresh = first.access_token, first.refresh_token
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = connect(web, source)
    assert len(callbacks) == 1  # the old tokens are revoked once the new ones are committed
    assert second.pk == first.pk and second.version == first.version + 1
    assert second.access_token != old_access and second.refresh_token != old_refresh
    assert OAuthToken.objects.filter(subject=source.pk).count() == 1
    assert not configured.active(old_refresh) and not configured.active(old_access)
    assert configured.active(second.refresh_token)
    assert AuditEvent.objects.filter(event="CONNECTOR_CONNECTED").latest("timestamp").details["reconnected"] is True


def test_a_tampered_state_is_refused(web, org, configured, make_source):
    source = make_source(org)
    callback = play_op(start(web, source))
    path, _, query = callback.partition("?")
    params = parse_qs(query)
    params["state"] = [params["state"][0][:-2] + "xx"]
    response = web.get(f"{path}?{urlencode(params, doseq=True)}")
    assert response.status_code == 403 and b"Connection not completed" in response.content
    assert failure().details["reason"] == "state_mismatch"
    assert not OAuthToken.objects.exists()


def test_a_replayed_callback_is_refused(web, org, configured, make_source):
    source = make_source(org)
    callback = play_op(start(web, source))
    assert web.get(callback).status_code == 302
    token = OAuthToken.objects.get(subject=source.pk)
    replay = web.get(callback)
    assert replay.status_code == 403 and failure().details["reason"] == "state_mismatch"
    assert configured.active(token.refresh_token)  # the code never reached the provider twice


def test_a_callback_in_another_browser_is_refused(web, org, manager, configured, make_source):
    source = make_source(org)
    callback = play_op(start(web, source))
    other_browser = signed_in(manager)  # same user, another session: the state is not there
    assert other_browser.get(callback).status_code == 403
    assert failure().details["reason"] == "state_mismatch" and not OAuthToken.objects.exists()


def test_a_flow_older_than_ten_minutes_is_refused(web, org, configured, make_source):
    source = make_source(org)
    with clock.frozen() as frozen:
        callback = play_op(start(web, source))
        frozen.advance(minutes=11)
        response = web.get(callback)
    assert response.status_code == 403 and b"expired" in response.content
    assert failure().details["reason"] == "expired" and not OAuthToken.objects.exists()


def test_access_denied_goes_back_with_a_message(web, org, configured, make_source):
    source = make_source(org)
    state = parse_qs(urlparse(start(web, source)).query)["state"][0]
    response = web.get("/connectors/callback/?" + urlencode({"error": "access_denied", "state": state,
                                                             "error_description": "<script>x</script>"}))
    assert response.status_code == 302 and response["Location"] == "/data-sources/"
    page = web.get("/data-sources/")
    assert b"access was not granted" in page.content and b"<script>x" not in page.content
    event = failure()
    assert event.details == {"provider": "google_drive", "subject": source.pk, "reason": "access_denied",
                             "error": "access_denied"}
    assert not OAuthToken.objects.exists()
    assert web.get("/connectors/callback/?" + urlencode({"code": "x", "state": state})).status_code == 403


def test_a_bad_code_is_refused_by_the_provider(web, org, configured, make_source):
    source = make_source(org)
    state = parse_qs(urlparse(start(web, source)).query)["state"][0]
    response = web.get("/connectors/callback/?" + urlencode({"code": "not-a-code", "state": state}))
    assert response.status_code == 302 and response["Location"] == "/data-sources/"
    assert failure().details["reason"] == "exchange_dead_grant" and failure().details["error"] == "invalid_grant"
    assert not OAuthToken.objects.exists()


@pytest.mark.parametrize("query", ["", "state=", "state=" + "x" * 300, "code=abc", "state=\x00"])
def test_callbacks_without_a_usable_state_are_refused(web, query):
    response = web.get("/connectors/callback/?" + query)
    assert response.status_code == 403 and failure().details["reason"] == "state_mismatch"


def test_the_callback_needs_a_signed_in_user(configured):
    response = Client().get("/connectors/callback/?code=x&state=y")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_unconfigured_provider_does_not_start(web, org, make_source, settings):
    source = make_source(org)  # CONNECTOR_PROVIDERS not set: google_drive has no client id
    response = web.post(f"/data-sources/{source.pk}/connect/")
    assert response.status_code == 302 and response["Location"] == "/data-sources/"
    page = web.get("/data-sources/")
    assert b"not configured on this server" in page.content and b">Connect<" not in page.content
    assert SESSION_KEY not in web.session or web.session[SESSION_KEY] == {}


def test_members_without_connect_cannot_connect(org, configured, make_source, make_member, grant_view):
    source = make_source(org)
    user = make_member(org, "user", email="user@acme.test")
    browser = signed_in(user)
    assert browser.post(f"/data-sources/{source.pk}/connect/").status_code == 404  # hidden: not even view
    grant_view(user, source)
    response = browser.post(f"/data-sources/{source.pk}/connect/")
    assert response.status_code == 403
    assert AuditEvent.objects.filter(event="AUTHORIZATION_DENIED", target_id=source.pk).exists()
    assert browser.post(f"/data-sources/{source.pk}/disconnect/").status_code == 403
    assert browser.get(f"/data-sources/{source.pk}/connect/").status_code == 405


def test_connect_of_an_unknown_or_foreign_source_is_not_found(web, make_org, configured, make_source):
    theirs = make_source(make_org("globex"))
    for pk in (theirs.pk, "src_missing", "src_%00bad"):
        assert web.post(f"/data-sources/{pk}/connect/").status_code == 404


def test_only_oauth_kinds_connect(web, org, configured, make_source):
    site = make_source(org, kind="website", name="Help center")
    response = web.post(f"/data-sources/{site.pk}/connect/")
    assert response.status_code == 302 and response["Location"] == "/data-sources/"
    assert DataSource.objects.get(pk=site.pk).kind == "website" and not OAuthToken.objects.exists()


@pytest.mark.parametrize(("value", "expected"), [
    ("/data-sources/", "/data-sources/"), ("/a?b=c", "/a?b=c"), ("https://evil.test/", "/"), ("//evil.test", "/"),
    ("/\\evil.test", "/"), ("javascript:alert(1)", "/"), ("", "/"), (None, "/"), ("/a\nb", "/"), ("/" + "a" * 600, "/"),
])
def test_return_paths_stay_on_this_site(value, expected):
    assert safe_return_path(value) == expected


def test_two_first_connects_of_one_source_at_once_leave_one_connection(org, configured, make_source, monkeypatch):
    from twig_auth.connectors import services
    from twig_auth.connectors.grants import TokenSet
    from twig_auth.connectors.providers import get_provider
    from twig_auth.core.context import RequestContext

    source, provider = make_source(org), get_provider("google_drive")
    services.complete_connection(org=org, provider=provider, subject=source.pk, context=RequestContext.system(),
                                 tokens=TokenSet(access_token="first-member-access", refresh_token="first-rt"))
    real, reads = OAuthToken.objects.select_for_update, []

    def read_before_the_other_insert_committed():
        reads.append(1)
        return real().none() if len(reads) == 1 else real()

    monkeypatch.setattr(OAuthToken.objects, "select_for_update", read_before_the_other_insert_committed)
    token = services.complete_connection(org=org, provider=provider, subject=source.pk,
                                         context=RequestContext.system(),
                                         tokens=TokenSet(access_token="second-member-access", refresh_token="rt2"))
    assert len(reads) == 2  # the insert collided on the unique constraint, the retry updated the row
    stored = OAuthToken.objects.get(subject=source.pk)
    assert stored.pk == token.pk and stored.access_token == "second-member-access"
    assert AuditEvent.objects.filter(event="CONNECTOR_CONNECTED", details__reconnected=True).count() == 1
