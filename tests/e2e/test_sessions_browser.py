"""Settings → Sessions and Settings → Security in a real browser: end another browser's session; screenshots."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, oathtool
from tests.e2e.conftest import PHONE, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_end_another_browsers_session(new_page: Any, screenshot: Any, owner: Any, org: Any,
                                      make_member: Any) -> None:
    make_member(org, "user", email="ann@acme.test")
    first = new_page()
    second = new_page()
    sign_in(first, "owner@acme.test", PASSWORD)
    sign_in(second, "owner@acme.test", PASSWORD)
    sign_in(new_page(), "ann@acme.test", PASSWORD)

    first.get_by_label("Account menu for owner@acme.test").click()
    first.get_by_role("navigation", name="Account").get_by_role("link", name="Sessions").click()
    first.wait_for_url("**/settings/sessions/")
    expect(first.get_by_role("heading", name="Sessions", level=1)).to_be_visible()
    rows = first.locator("tr.session-row")
    expect(rows).to_have_count(2)
    expect(first.locator("tr.session-row--current")).to_contain_text("This device")
    expect(first.get_by_role("link", name="Sessions of ann@acme.test")).to_be_visible()
    screenshot(first, "sessions-desktop")

    second.goto("/settings/sessions/")
    expect(second.locator("tr.session-row")).to_have_count(2)

    other = first.locator("tr.session-row:not(.session-row--current)")
    other.get_by_role("button", name=re.compile("^Sign out")).click()
    first.wait_for_load_state()
    expect(first.locator(".messages")).to_contain_text("Signed out")
    expect(first.locator("tr.session-row")).to_have_count(1)

    # The other browser is signed out on its next click.
    second.get_by_role("link", name="Twig home").click()
    second.wait_for_url(re.compile(r"/login/"))
    expect(second.get_by_role("button", name="Sign in")).to_be_visible()

    # an admin's view of a member's sessions
    first.get_by_role("link", name="Sessions of ann@acme.test").click()
    first.wait_for_url("**/settings/sessions/member/*/")
    expect(first.locator("tr.session-row")).to_have_count(1)
    screenshot(first, "sessions-member-desktop")

    phone = new_page(PHONE)
    sign_in(phone, "owner@acme.test", PASSWORD)
    phone.goto("/settings/sessions/")
    expect(phone.locator("tr.session-row")).to_have_count(2)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "sessions-phone")


def test_security_settings_page(new_page: Any, screenshot: Any, owner: Any, org: Any, totp_device: Any) -> None:
    page = new_page()
    sign_in(page, "owner@acme.test", PASSWORD)
    phone = new_page(PHONE)
    sign_in(phone, "owner@acme.test", PASSWORD)  # before the authenticator app exists: no code at sign-in
    page.get_by_label("Account menu for owner@acme.test").click()
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Security settings").click()
    page.wait_for_url("**/settings/security/")
    expect(page.get_by_role("heading", name="Security settings", level=1)).to_be_visible()
    screenshot(page, "security-desktop")

    page.get_by_label("Concurrent sessions per user").fill("0")
    page.get_by_label("Sign users out after").fill("2")
    page.get_by_label("Timeout unit").select_option("minutes")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_load_state()
    expect(page.locator("#id_session_max_concurrent_error")).to_have_text("Must be between 1 and 100.")
    expect(page.locator("#id_session_timeout_error")).to_have_text("Must be between 5 minutes and 90 days.")
    screenshot(page, "security-errors-desktop")

    page.get_by_label("Concurrent sessions per user").fill("5")
    page.get_by_label("Sign users out after").fill("12")
    page.get_by_label("Timeout unit").select_option("hours")
    page.get_by_label("Bind sessions to an IP address").check()
    _, secret = totp_device(owner.user)
    page.get_by_role("button", name="Save settings").click()
    # Saving needs a recent second factor: the prompt, then the same change goes through.
    code = page.locator('input[name="twig_step_up_code"]')
    expect(code).to_be_visible()
    org.refresh_from_db()
    assert not (org.settings or {}).get("session")
    code.fill(oathtool(secret))
    code.press("Enter")
    page.wait_for_url("**/settings/security/")
    expect(page.locator(".messages")).to_contain_text("were saved")
    org.refresh_from_db()
    assert org.settings["session"] == {"timeout": 43200, "maxConcurrent": 5, "enforceIPBinding": True}

    phone.goto("/settings/security/")
    phone.get_by_label("Concurrent sessions per user").fill("0")
    phone.get_by_role("button", name="Save settings").click()
    phone.wait_for_load_state()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "security-phone")
