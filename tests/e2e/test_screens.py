"""Screenshots of the main pages (desktop and phone), saved under artifacts/screens/ for review."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import PHONE, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_screenshots_of_the_main_pages(new_page: Any, screenshot: Any, owner: Any, make_org: Any) -> None:
    from twig_auth.orgs import services as org_services

    owner.user.is_staff = True
    owner.user.save(update_fields=["is_staff"])
    org_services.add_member(org=make_org("globex", name="Globex", plan="team"), user=owner.user, role="admin")

    page = new_page()
    page.goto("/login/")
    assert screenshot(page, "login-desktop").stat().st_size > 0

    phone = new_page(PHONE)
    phone.goto("/login/")
    # The form fits a phone: no horizontal scrolling.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "login-phone")

    sign_in(page, "owner@acme.test", "Wrong-Horse-9!")
    assert page.get_by_role("alert").is_visible()
    screenshot(page, "login-error")

    sign_in(phone, "owner@acme.test", "Wrong-Horse-9!")
    screenshot(phone, "login-error-phone")

    sign_in(page, "owner@acme.test", PASSWORD)
    assert "/organizations/choose/" in page.url
    screenshot(page, "choose-org")
    page.get_by_role("button", name="Acme").first.click()
    page.wait_for_url("**/")
    screenshot(page, "home")

    page.get_by_label("Account menu for owner@acme.test").click()
    screenshot(page, "home-user-menu")

    page.goto("/password/change/")
    screenshot(page, "password-change")
    page.get_by_label("Old password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password confirmation").fill("short")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_load_state()
    screenshot(page, "password-change-errors")

    page.goto("/password/reset/")
    screenshot(page, "password-reset")

    sign_in(phone, "owner@acme.test", PASSWORD)
    phone.get_by_role("button", name="Acme").first.click()
    phone.wait_for_url("**/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "home-phone")
