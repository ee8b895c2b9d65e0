"""Disconnect: the tokens are revoked at the provider (RFC 7009), which then refuses them, and deleted here;
deleting a data source disconnects it the same way."""

from __future__ import annotations

import pytest

from tests.sso.oidc_peer import free_port
from twig_auth.audit.models import AuditEvent
from twig_auth.connectors import services
from twig_auth.connectors.models import OAuthToken
from twig_auth.core.context import RequestContext
from twig_project.workspace.models import DataSource

from .conftest import connect

pytestmark = pytest.mark.django_db


def assert_rejected_by_the_provider(op, access: str, refresh: str) -> None:
    assert not op.active(access) and not op.active(refresh)
    response = op.refresh(refresh)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert op.userinfo(access).status_code == 401


def test_disconnect_revokes_both_tokens_and_deletes_them(web, org, manager, configured, make_source):
    source = make_source(org)
    stored = connect(web, source)
    access, refresh = stored.access_token, stored.refresh_token
    response = web.post(f"/data-sources/{source.pk}/disconnect/")
    assert response.status_code == 302 and response["Location"] == "/data-sources/"
    assert not OAuthToken.objects.exists()
    assert_rejected_by_the_provider(configured, access, refresh)
    event = AuditEvent.objects.get(event="CONNECTOR_DISCONNECTED")
    assert event.details == {"provider": "google_drive", "subject": source.pk, "deleted": True,
                             "revoked": {"refresh": "revoked", "access": "revoked"}}
    assert event.user == manager.user
    page = web.get("/data-sources/")
    assert b"access was revoked at the provider" in page.content and b">Connect<" in page.content


def test_disconnecting_twice_is_harmless(web, org, configured, make_source):
    source = make_source(org)
    connect(web, source)
    assert web.post(f"/data-sources/{source.pk}/disconnect/").status_code == 302
    assert web.post(f"/data-sources/{source.pk}/disconnect/").status_code == 302
    assert b"was not connected" in web.get("/data-sources/").content
    assert AuditEvent.objects.filter(event="CONNECTOR_DISCONNECTED").count() == 1


def test_deleting_the_data_source_revokes_its_tokens(web, org, configured, make_source, api):
    source = make_source(org, kind="slack", name="Chat")
    stored = connect(web, source)
    access = stored.access_token
    assert api.delete(f"/api/data-sources/{source.pk}").status_code == 204
    assert not DataSource.objects.filter(pk=source.pk).exists() and not OAuthToken.objects.exists()
    assert configured.userinfo(access).status_code == 401
    kinds = list(AuditEvent.objects.filter(event__in=["CONNECTOR_DISCONNECTED", "DATA_SOURCE_DELETED"])
                 .order_by("id").values_list("event", flat=True))
    assert kinds == ["CONNECTOR_DISCONNECTED", "DATA_SOURCE_DELETED"]


def test_an_unreachable_provider_still_disconnects_here(web, org, configured, use_op, make_source):
    source = make_source(org)
    stored = connect(web, source)
    use_op(configured, revocation_endpoint=f"http://127.0.0.1:{free_port()}/revoke")
    outcome = services.disconnect(org=org, provider="google_drive", subject=source.pk,
                                  context=RequestContext.system())
    assert outcome == {"refresh": "failed", "access": "failed"}
    assert not OAuthToken.objects.exists()
    assert configured.active(stored.refresh_token)  # the provider was never told: the page says so
    use_op(configured)
    stored = connect(web, source)
    use_op(configured, revocation_endpoint=f"http://127.0.0.1:{free_port()}/revoke")
    web.post(f"/data-sources/{source.pk}/disconnect/")
    assert b"could not be reached to revoke" in web.get("/data-sources/").content


def test_a_failed_connection_disconnects_without_calling_the_provider(web, org, configured, make_source):
    source = make_source(org)
    stored = connect(web, source)
    OAuthToken.objects.filter(pk=stored.pk).update(status="connection_failed", access_token="", refresh_token="")
    outcome = services.disconnect(org=org, provider="google_drive", subject=source.pk,
                                  context=RequestContext.system())
    assert outcome == {"refresh": "none", "access": "none"} and not OAuthToken.objects.exists()
