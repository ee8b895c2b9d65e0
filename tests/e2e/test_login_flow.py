"""Sign in, wrong password, lockout and sign out, driven through a real Chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_login_lands_on_home_showing_email_and_org(page: Any, live_server: Any, owner: Any) -> None:
    sign_in(page, "owner@acme.test", PASSWORD)

    assert page.url == f"{live_server.url}/"
    assert page.get_by_role("heading", name="Welcome back").is_visible()
    assert page.locator(".user-email").inner_text() == "owner@acme.test"
    assert page.locator(".org-name").inner_text() == "Acme"
    assert "Super admin" in page.locator("main").inner_text()
    assert "Enterprise" in page.locator("main").inner_text()


def test_wrong_password_shows_a_human_error(page: Any, live_server: Any, owner: Any) -> None:
    sign_in(page, "owner@acme.test", "Wrong-Horse-9!")

    alert = page.get_by_role("alert")
    assert alert.inner_text().strip() == "Invalid email or password."
    assert page.url.startswith(f"{live_server.url}/login/")
    # The email is kept, the password is not echoed back.
    assert page.get_by_label("Email").input_value() == "owner@acme.test"
    assert page.get_by_label("Password", exact=True).input_value() == ""


def test_unknown_email_gets_the_same_error(page: Any, owner: Any) -> None:
    sign_in(page, "nobody@acme.test", PASSWORD)

    assert page.get_by_role("alert").inner_text().strip() == "Invalid email or password."


def test_sixth_attempt_after_five_wrong_passwords_is_locked_out(page: Any, live_server: Any, owner: Any) -> None:
    for _ in range(5):
        sign_in(page, "owner@acme.test", "Wrong-Horse-9!")
        assert page.get_by_role("alert").is_visible()

    sign_in(page, "owner@acme.test", PASSWORD)  # even the right password is refused now

    assert "Too many failed sign-in attempts" in page.get_by_role("alert").inner_text()
    assert page.url.startswith(f"{live_server.url}/login/")
    page.goto("/")
    assert re.search(r"/login/\?next=/$", page.url)


def test_sign_out_ends_the_session(page: Any, live_server: Any, owner: Any) -> None:
    sign_in(page, "owner@acme.test", PASSWORD)
    assert page.url == f"{live_server.url}/"

    page.get_by_role("button", name="Sign out").first.click()
    page.wait_for_url(re.compile(r"/login/$"))
    assert page.get_by_role("status").inner_text().strip() == "You are signed out."

    page.goto("/")
    assert page.url == f"{live_server.url}/login/?next=/"
    assert page.get_by_role("heading", name="Sign in to Twig").is_visible()


def test_sign_out_from_the_header_menu(page: Any, live_server: Any, owner: Any) -> None:
    sign_in(page, "owner@acme.test", PASSWORD)

    page.get_by_label("Account menu for owner@acme.test").click()
    page.locator(".user-menu").get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/$"))

    page.goto("/password/change/")
    assert page.url == f"{live_server.url}/login/?next=/password/change/"


def test_member_of_two_orgs_chooses_then_switches(page: Any, live_server: Any, owner: Any,
                                                   make_org: Any) -> None:
    from twig_auth.orgs import services as org_services

    other = make_org("globex", name="Globex", plan="team")
    org_services.add_member(org=other, user=owner.user, role="manager")

    sign_in(page, "owner@acme.test", PASSWORD)
    assert "/organizations/choose/" in page.url
    page.get_by_role("button", name=re.compile("^Globex")).click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".org-name").inner_text() == "Globex"
    assert "Manager" in page.locator("main").inner_text()

    page.locator("#home-org").select_option(label="Acme")
    page.locator(".inline-form").get_by_role("button", name="Switch").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".org-name").inner_text() == "Acme"
