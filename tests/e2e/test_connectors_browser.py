"""Data sources in a real Chromium: Connect a Google Drive source through oidc-provider (AUTO_LOGIN: it signs
alice in and consents), see it connected, see a Slack source whose access was revoked at the provider turn
into "Connection failed — reconnect", disconnect; screenshots artifacts/screens/connectors-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.connectors.conftest import Op, provider_settings
from tests.e2e.conftest import PHONE, sign_in
from tests.sso.oidc_peer import run_op
from twig_auth.connectors.models import OAuthToken
from twig_auth.core.context import RequestContext
from twig_project.workspace import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live_op(live_server: Any, tmp_path: Any, settings: Any) -> Iterator[Op]:
    with run_op(tmp_path / "op.log", live_server.url) as issuer:
        settings.TWIG_AUTH = {**settings.TWIG_AUTH, "CONNECTOR_PROVIDERS": provider_settings(issuer)}
        yield Op(issuer, tmp_path / "op.log")


def test_connect_a_google_drive_source_in_the_browser(live_server: Any, live_op: Op, new_page: Any,
                                                      make_org: Any, make_member: Any, screenshot: Any) -> None:
    org = make_org("acme", plan="team", name="Acme")
    make_member(org, "manager", email="mia@acme.test")
    drive = services.create_data_source(org=org, name="Team drive", kind="google_drive",
                                        context=RequestContext.system())
    chat = services.create_data_source(org=org, name="Support chat", kind="slack", context=RequestContext.system())
    services.create_data_source(org=org, name="Help center", kind="website", context=RequestContext.system())
    page = new_page()
    sign_in(page, "mia@acme.test", PASSWORD)
    page.goto("/data-sources/")
    expect(page.get_by_role("heading", name="Data sources", exact=True)).to_be_visible()
    expect(page.locator(f'[data-source-id="{drive.pk}"]')).to_contain_text("Not connected")
    screenshot(page, "connectors-not-connected")

    page.get_by_role("button", name="Connect Team drive").click()
    page.wait_for_url(f"{live_server.url}/data-sources/")
    expect(page.get_by_role("alert").or_(page.locator(".messages, [role=status]")).first).to_contain_text(
        "Google Drive is connected.")
    row = page.locator(f'[data-source-id="{drive.pk}"]')
    expect(row).to_contain_text("Connected")
    expect(row.get_by_role("button", name="Disconnect Team drive")).to_be_visible()
    token = OAuthToken.objects.get(subject=drive.pk)
    assert token.status == "connected" and live_op.active(token.refresh_token)
    assert live_op.grants("authorization_code") == 1
    screenshot(page, "connectors-connected")

    page.get_by_role("button", name="Connect Support chat").click()
    page.wait_for_url(f"{live_server.url}/data-sources/")
    live_op.revoke(OAuthToken.objects.get(subject=chat.pk).refresh_token, "test-client-post")  # removed at Slack
    page.get_by_role("button", name="Sync now: Support chat").click()
    page.wait_for_url(f"{live_server.url}/data-sources/")
    failed = page.locator(f'[data-source-id="{chat.pk}"]')
    expect(failed).to_contain_text("Connection failed — reconnect")
    expect(failed.get_by_role("button", name="Reconnect Support chat")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Connection failed — reconnect Support chat")
    screenshot(page, "connectors-connection-failed")
    phone = new_page(PHONE)
    sign_in(phone, "mia@acme.test", PASSWORD)
    phone.goto("/data-sources/")
    screenshot(phone, "connectors-phone")

    page.get_by_role("button", name="Reconnect Support chat").click()
    page.wait_for_url(f"{live_server.url}/data-sources/")
    expect(page.locator(f'[data-source-id="{chat.pk}"]')).to_contain_text("Connected")

    access, refresh = token.access_token, token.refresh_token
    page.get_by_role("button", name="Disconnect Team drive").click()
    page.wait_for_url(f"{live_server.url}/data-sources/")
    expect(page.locator("body")).to_contain_text("its access was revoked at the provider")
    expect(page.locator(f'[data-source-id="{drive.pk}"]')).to_contain_text("Not connected")
    assert not live_op.active(access) and not live_op.active(refresh)
    assert not OAuthToken.objects.filter(subject=drive.pk).exists()
    screenshot(page, "connectors-disconnected")
