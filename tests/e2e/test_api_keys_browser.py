"""Settings → API keys in a real browser: generate a key, use it, revoke it; screenshots for review."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import PHONE, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

KEY_RE = re.compile(r"twigsk_live_[0-9A-Za-z]{50}")


def call_api(base_url: str, key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(base_url + "/api/agents", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  (the local live server)
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def seed(owner: Any, org: Any, make_member: Any) -> Any:
    """Give the org a few keys of different states, and 30 days of usage for one of them."""
    from twig_auth.apikeys.models import ApiKeyUsage
    from twig_auth.apikeys.services import issue_api_key, revoke_api_key
    from twig_auth.core import clock

    manager = make_member(org, "manager", email="mia@acme.test")
    deploy, _ = issue_api_key(creator=owner, name="Deploy pipeline", scopes=["read", "write"], environment="live")
    issue_api_key(creator=manager, name="Staging smoke tests", scopes=["read", "execute"], environment="test",
                  expires_at=clock.now() + dt.timedelta(days=90))
    old, _ = issue_api_key(creator=owner, name="Old laptop script", scopes=["read"], environment="live")
    revoke_api_key(key=old)
    today = clock.now().date()
    rows = []
    for i in range(30):
        n = (i * 37) % 23 + (8 if i % 7 in (2, 3, 4) else 0)
        if i % 9 == 5:
            continue
        rows.append(ApiKeyUsage(key=deploy, day=today - dt.timedelta(days=29 - i), endpoint="GET /api/agents",
                                status=200, count=n * 3))
    rows += [ApiKeyUsage(key=deploy, day=today, endpoint="POST /api/agents", status=201, count=12),
             ApiKeyUsage(key=deploy, day=today, endpoint="GET /api/agents/<str:id>", status=404, count=2),
             ApiKeyUsage(key=deploy, day=today, endpoint="DELETE /api/data-sources/<str:id>", status=204, count=1)]
    ApiKeyUsage.objects.bulk_create(rows)
    from twig_auth.apikeys.models import ApiKey

    ApiKey.objects.filter(pk=deploy.pk).update(last_used_at=clock.now() - dt.timedelta(minutes=12),
                                               last_used_ip="203.0.113.7")
    return deploy


def test_generate_use_and_revoke_a_key_in_the_browser(new_page: Any, live_server: Any, screenshot: Any,
                                                      owner: Any, org: Any, make_member: Any) -> None:
    deploy = seed(owner, org, make_member)
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, "owner@acme.test", PASSWORD)

    page.get_by_label("Account menu for owner@acme.test").click()
    page.get_by_role("navigation", name="Account").get_by_role("link", name="API keys").click()
    page.wait_for_url("**/settings/api-keys/")
    expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()
    screenshot(page, "api-keys-list")

    page.get_by_label("Name", exact=True).fill("Browser test")
    page.get_by_label("Execute").check()
    page.get_by_role("radio", name=re.compile(r"^Live")).check()
    page.get_by_role("button", name="Generate key").click()
    page.wait_for_load_state()
    key = page.get_by_test_id("new-key-value").inner_text().strip()
    assert KEY_RE.fullmatch(key), key
    expect(page.get_by_text("it will not be shown again")).to_be_visible()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied to the clipboard.")).to_be_visible()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    screenshot(page, "api-keys-new-key")

    status, body = call_api(live_server.url, key)
    assert status == 200, body

    # Reloading the list never shows the key again.
    page.goto("/settings/api-keys/")
    assert key not in page.content()

    page.goto(f"/settings/api-keys/{deploy.pk}/usage/")
    assert page.locator("#usage-total").inner_text() != "0"
    assert page.locator(".bar-chart svg rect").count() == 30
    screenshot(page, "api-keys-usage")

    page.goto("/settings/api-keys/")
    page.get_by_role("link", name="Roll Deploy pipeline").click()
    page.wait_for_load_state()
    screenshot(page, "api-keys-roll")

    page.goto("/settings/api-keys/")
    page.get_by_role("link", name="Revoke Browser test").click()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", name="Revoke “Browser test”?")).to_be_visible()
    screenshot(page, "api-keys-revoke-confirm")
    page.get_by_role("button", name="Revoke key").click()
    page.wait_for_url("**/settings/api-keys/")
    expect(page.locator(".messages")).to_contain_text("“Browser test”")
    expect(page.locator(".messages")).to_contain_text("was revoked")

    status, body = call_api(live_server.url, key)
    assert status == 401 and body["code"] == "invalid_api_key", body
    screenshot(page, "api-keys-after-revoke")

    phone = new_page(PHONE)
    sign_in(phone, "owner@acme.test", PASSWORD)
    phone.goto("/settings/api-keys/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "api-keys-list-phone")
    phone.get_by_label("Name", exact=True).fill("Phone key")
    phone.get_by_role("button", name="Generate key").click()
    phone.wait_for_load_state()
    assert KEY_RE.fullmatch(phone.get_by_test_id("new-key-value").inner_text().strip())
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "api-keys-new-key-phone")
    phone.goto(f"/settings/api-keys/{deploy.pk}/usage/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "api-keys-usage-phone")
