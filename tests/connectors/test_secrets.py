"""Tokens at rest and in sight: bound to their row (a swapped ciphertext fails), never in the admin, the logs,
the audit log or a repr; the provider settings are validated."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.admin.utils import quote
from django.core.management import call_command
from django.db import connection

from twig_auth.audit.models import AuditEvent
from twig_auth.conf import app_settings
from twig_auth.connectors.grants import TokenSet
from twig_auth.connectors.models import OAuthToken
from twig_auth.connectors.providers import all_providers, get_provider, validate_providers
from twig_auth.connectors.tokens import access_token_for
from twig_auth.core import clock
from twig_auth.exceptions import DecryptionFailed

from .conftest import connect

pytestmark = pytest.mark.django_db


def raw_columns(pk: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM oauth_tokens WHERE id = %s", [pk])
        return cursor.fetchone()


def test_a_ciphertext_moved_to_another_row_does_not_decrypt(web, org, configured, make_source):
    first = connect(web, make_source(org, name="One"))
    second = connect(web, make_source(org, name="Two"))
    raw_access, raw_refresh = raw_columns(first.pk)
    with connection.cursor() as cursor:  # an attacker with database access swaps the tokens
        cursor.execute("UPDATE oauth_tokens SET access_token = %s, refresh_token = %s WHERE id = %s",
                       [raw_access, raw_refresh, second.pk])
    moved = OAuthToken.objects.get(pk=second.pk)
    with pytest.raises(DecryptionFailed):
        _ = moved.access_token
    with pytest.raises(DecryptionFailed):
        _ = moved.refresh_token
    assert OAuthToken.objects.get(pk=first.pk).access_token == first.access_token


def test_no_token_reaches_the_logs_the_audit_log_or_a_repr(web, org, rotating_op, use_op, make_source, api, caplog):
    use_op(rotating_op)
    caplog.set_level(logging.DEBUG)
    seen: set[str] = set()
    source = make_source(org)
    with clock.frozen() as frozen:
        token = connect(web, source)
        seen |= {token.access_token, token.refresh_token}
        frozen.advance(hours=2)
        access_token_for(org=org, provider="google_drive", subject=source.pk)
        token.refresh_from_db()
        seen |= {token.access_token, token.refresh_token}
        assert api.post(f"/api/data-sources/{source.pk}/sync").status_code == 200
        assert web.post(f"/data-sources/{source.pk}/disconnect/").status_code == 302
    assert len(seen) == 4 and all(len(s) > 20 for s in seen)
    audit = json.dumps(list(AuditEvent.objects.values()), default=str)  # every column of every event
    assert {"CONNECTOR_CONNECTED", "CONNECTOR_REFRESHED", "CONNECTOR_DISCONNECTED"} <= set(
        AuditEvent.objects.values_list("event", flat=True))
    for secret in seen | {"test-secret"}:
        assert secret not in caplog.text and secret not in audit
        assert secret not in repr(token) and secret not in str(token)
    assert "test-secret" not in repr(get_provider("google_drive"))
    assert "abc123" not in repr(TokenSet(access_token="abc123", refresh_token="abc123"))


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user(email="root@example.test", is_staff=True, is_superuser=True),
                       backend="twig_auth.passwords.backends.EmailBackend")
    return client


def test_the_admin_shows_no_token_and_disconnects(web, org, configured, make_source, admin_client):
    token = connect(web, make_source(org))
    access, refresh = token.access_token, token.refresh_token
    listing = admin_client.get("/admin/twig_auth/oauthtoken/")
    detail = admin_client.get(f"/admin/twig_auth/oauthtoken/{quote(token.pk)}/change/")
    assert listing.status_code == 200 and detail.status_code == 200
    for page in (listing, detail):
        html = page.content.decode()
        assert access not in html and refresh not in html and "tv1." not in html
    assert b"google_drive" in detail.content
    assert admin_client.get("/admin/twig_auth/oauthtoken/add/").status_code == 403
    assert admin_client.post(f"/admin/twig_auth/oauthtoken/{quote(token.pk)}/delete/",
                             {"post": "yes"}).status_code == 403
    response = admin_client.post("/admin/twig_auth/oauthtoken/", {"action": "disconnect",
                                                                  "_selected_action": [token.pk]})
    assert response.status_code == 302 and not OAuthToken.objects.exists()
    assert not configured.active(refresh)


def test_the_builtin_providers_are_not_configured_until_given_a_client_id():
    providers = all_providers()
    assert set(providers) == {"google_drive", "slack"}
    drive, slack = providers["google_drive"], providers["slack"]
    assert not drive.configured and not slack.configured
    assert drive.token_endpoint == "https://oauth2.googleapis.com/token"
    assert dict(drive.authorize_params)["access_type"] == "offline" and drive.scope.endswith("drive.readonly")
    assert slack.authorization_endpoint == "https://slack.com/oauth/v2/authorize" and "," in slack.scope


def test_entries_merge_over_the_defaults(settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "CONNECTOR_PROVIDERS": {
        "google_drive": {"client_id": "id.apps.googleusercontent.com", "client_secret": "s"},
        "dropbox": {"name": "Dropbox", "authorization_endpoint": "https://www.dropbox.com/oauth2/authorize",
                    "token_endpoint": "https://api.dropboxapi.com/oauth2/token", "client_id": "x"}}}
    drive, dropbox = get_provider("google_drive"), get_provider("dropbox")
    assert drive.configured and drive.token_endpoint == "https://oauth2.googleapis.com/token"
    assert dropbox.configured and dropbox.token_endpoint_auth_method == "client_secret_basic"
    assert get_provider("nope") is None


@pytest.mark.parametrize(("value", "problem"), [
    ({}, None),
    ({"google_drive": {"client_id": "x"}}, None),
    ([], "must be a dict"),
    ({"bad slug!": {}}, "invalid provider slug"),
    ({"google_drive": "x"}, "must be a dict"),
    ({"google_drive": {"clientid": "x"}}, "unknown keys"),
    ({"new": {"authorization_endpoint": "https://a.test/auth"}}, "needs 'token_endpoint'"),
    ({"google_drive": {"token_endpoint": "http://example.com/token"}}, "https"),
    ({"google_drive": {"scopes": "drive"}}, "list of scope strings"),
    ({"google_drive": {"token_endpoint_auth_method": "private_key_jwt"}}, "client_secret_basic"),
    ({"google_drive": {"authorize_params": {"state": "fixed"}}}, "may not set"),
    ({"google_drive": {"client_secret": 5}}, "must be a string"),
])
def test_provider_settings_are_validated(value, problem):
    found = validate_providers(value)
    assert (found is None) if problem is None else (problem in found), found


def test_a_bad_setting_fails_the_system_check(settings, capsys):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "CONNECTOR_PROVIDERS": {"slack": {"token_endpoint": "ftp://x"}},
                          "CONNECTOR_HTTP_TIMEOUT": 0, "CONNECTOR_REDIRECT_URI": "http://example.com/cb"}
    problems = dict(app_settings.errors())
    assert set(problems) == {"CONNECTOR_PROVIDERS", "CONNECTOR_HTTP_TIMEOUT", "CONNECTOR_REDIRECT_URI"}
    with pytest.raises(Exception, match="twig_auth.E001"):
        call_command("check")


def test_the_redirect_uri_setting_wins(web, org, configured, make_source, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "SSO_BASE_URL": "https://auth.example.test"}
    start = web.post(f"/data-sources/{make_source(org).pk}/connect/")["Location"]
    assert "redirect_uri=https%3A%2F%2Fauth.example.test%2Fconnectors%2Fcallback%2F" in start
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "CONNECTOR_REDIRECT_URI": "https://cb.example.test/oauth/"}
    start = web.post(f"/data-sources/{make_source(org, name='B').pk}/connect/")["Location"]
    assert "redirect_uri=https%3A%2F%2Fcb.example.test%2Foauth%2F" in start
