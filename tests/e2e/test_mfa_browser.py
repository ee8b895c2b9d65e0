"""Two-factor authentication in a real Chromium: add an authenticator app with a code from oathtool, keep the
recovery codes, sign out, sign in again with password and a fresh code. Screens saved under artifacts/screens/."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.conftest import PASSWORD, oathtool
from tests.e2e.conftest import PHONE, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def fits(page: Any) -> bool:
    """No horizontal scrolling at the page's width."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_enroll_an_authenticator_app_then_sign_in_with_a_code(page: Any, live_server: Any, owner: Any,
                                                              screenshot: Any) -> None:
    sign_in(page, "owner@acme.test", PASSWORD)
    assert page.url == f"{live_server.url}/"
    banner = page.locator(".mfa-banner")
    assert "requires two-factor authentication" in banner.inner_text()
    screenshot(page, "mfa-grace-banner")

    page.get_by_label("Account menu for owner@acme.test").click()
    page.get_by_role("link", name="Two-factor authentication").click()
    page.wait_for_url("**/settings/mfa/")
    assert page.get_by_role("heading", name="Two-factor authentication", level=1).is_visible()
    assert "Set it up within 7 days" in page.locator("#mfa-status").inner_text()
    screenshot(page, "mfa-overview-empty")

    page.get_by_role("link", name="Add authenticator app").click()
    page.wait_for_url("**/settings/mfa/totp/")
    assert page.locator(".qr svg").is_visible()
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    assert secret and re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert re.sub(r"\s", "", page.locator("#totp-secret").inner_text()) == secret
    screenshot(page, "mfa-totp-setup")

    # A wrong code first: a field error, the same setup stays.
    page.get_by_label("6-digit code from the app").fill("000000" if oathtool(secret) != "000000" else "111111")
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    page.wait_for_load_state()
    assert "That code is not right" in page.locator("#id_code_error").inner_text()
    assert page.locator("#totp-secret").get_attribute("data-secret") == secret
    screenshot(page, "mfa-totp-wrong-code")

    page.get_by_label("6-digit code from the app").fill(oathtool(secret))
    page.get_by_label("Name (optional)").fill("Pixel 8")
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Your authenticator app is set up").is_visible()
    codes = page.locator(".recovery-code").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    assert page.get_by_role("link", name="Download as text").get_attribute("download") == "twig-recovery-codes.txt"
    screenshot(page, "mfa-recovery-codes")

    page.get_by_role("link", name="Done, back to two-factor settings").click()
    page.wait_for_url("**/settings/mfa/")
    assert "Pixel 8" in page.locator(".device-list").inner_text()
    assert "10 of 10 codes left" in page.locator("#recovery-count").inner_text()
    assert page.locator(".mfa-banner").count() == 0
    screenshot(page, "mfa-overview-enrolled")

    page.get_by_label("Account menu for owner@acme.test").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")

    sign_in(page, "owner@acme.test", PASSWORD)
    page.wait_for_url("**/login/verify/")
    assert page.get_by_role("heading", name="Two-step verification").is_visible()
    code_box = page.get_by_label("Verification code")
    assert code_box.get_attribute("autocomplete") == "one-time-code"
    assert code_box.evaluate("el => el === document.activeElement")
    screenshot(page, "mfa-login-verify")

    # The enrollment code's time step is used up; the next step's code is within the allowed drift.
    code_box.fill(oathtool(secret, at=time.time() + 30))
    page.get_by_role("button", name="Verify and sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", name="Welcome back").is_visible()
    assert page.locator(".user-email").inner_text() == "owner@acme.test"


def test_phone_screens_fit_and_a_wrong_code_is_explained(new_page: Any, live_server: Any, owner: Any,
                                                        totp_device: Any, screenshot: Any, capfd: Any) -> None:
    from twig_auth.mfa import recovery

    _, secret = totp_device(owner.user, name="Authenticator")
    recovery.generate(owner.user)
    phone = new_page(PHONE)

    sign_in(phone, "owner@acme.test", PASSWORD)
    phone.wait_for_url("**/login/verify/")
    assert fits(phone)
    screenshot(phone, "mfa-login-verify-phone")

    phone.get_by_label("Verification code").fill("12")
    phone.get_by_role("button", name="Verify and sign in").click()
    phone.wait_for_load_state()
    assert phone.locator("#id_code_error").is_visible()
    assert phone.get_by_label("Verification code").get_attribute("aria-invalid") == "true"
    screenshot(phone, "mfa-login-error-phone")

    phone.get_by_label("Verification code").fill(oathtool(secret))
    phone.get_by_role("button", name="Verify and sign in").click()
    phone.wait_for_url(f"{live_server.url}/")

    phone.goto("/settings/mfa/")
    assert fits(phone)
    screenshot(phone, "mfa-overview-phone")

    phone.goto("/settings/mfa/totp/")
    assert fits(phone)
    screenshot(phone, "mfa-totp-setup-phone")

    phone.goto("/settings/mfa/sms/")
    phone.get_by_label("Mobile phone number").fill("+1 415 555 2671")
    phone.get_by_role("button", name="Text me a code").click()
    phone.wait_for_load_state()
    assert "Step 2 of 2" in phone.locator(".step-indicator").text_content()
    assert fits(phone)
    screenshot(phone, "mfa-sms-code-phone")
    texted = re.findall(r"code is (\d{6})\.", capfd.readouterr().out)
    assert len(texted) == 1
    phone.get_by_label("6-digit code from the text message").fill(texted[0])
    phone.get_by_role("button", name="Turn on two-factor authentication").click()
    phone.wait_for_load_state()
    # A second method adds no new recovery codes: straight back to the overview.
    phone.wait_for_url("**/settings/mfa/")
    assert "Your phone is set up." in phone.locator("main").inner_text()
    assert "Text message to +1•••••2671" in phone.locator(".device-list").inner_text()

    phone.get_by_role("link", name=re.compile(r"Remove Authenticator")).click()
    phone.wait_for_load_state()
    assert fits(phone)
    screenshot(phone, "mfa-remove-phone")
