"""Settings → Access in a real browser: grant, explain, time windows, separation of duties and the policy editor,
at desktop and phone widths; screenshots in artifacts/screens/authz-*.png."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, oathtool
from tests.e2e.conftest import PHONE, sign_in
from twig_auth.authz.models import Grant, Policy, SodRule
from twig_auth.core import clock
from twig_auth.orgs.models import Group, GroupMembership
from twig_project.workspace.models import Agent, DataSource

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(org: Any, owner: Any, make_member: Any) -> dict[str, Any]:
    ann = make_member(org, "user", email="ann@acme.test")
    mia = make_member(org, "manager", email="mia@acme.test")
    support = Group.objects.create(org=org, name="Support")
    GroupMembership.objects.create(group=support, membership=ann)
    bot = Agent.objects.create(org=org, name="Support bot", created_by=owner.user)
    Agent.objects.create(org=org, name="Sales assistant", created_by=mia.user)
    DataSource.objects.create(org=org, name="Help center", kind=DataSource.Kind.WEBSITE, created_by=owner.user)
    return {"ann": ann, "mia": mia, "support": support, "bot": bot}


def no_sideways_scroll(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_grant_a_member_then_ask_why(new_page: Any, screenshot: Any, world: dict[str, Any]) -> None:
    page = new_page()
    sign_in(page, "owner@acme.test", PASSWORD)
    page.get_by_label("Account menu for owner@acme.test").click()
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Access").click()
    page.wait_for_url("**/settings/access/")
    expect(page.get_by_role("heading", name="Access", level=1)).to_be_visible()
    expect(page.get_by_text("No grants yet.")).to_be_visible()

    # choosing a type shows only its resources and actions
    page.get_by_label("Resource type").select_option("data_source")
    assert page.locator('#id_resource option[value^="agent:"]').first.is_hidden()
    expect(page.locator('#id_action option[value="data_source:process"]')).to_be_attached()
    page.get_by_label("Resource type").select_option("agent")

    page.get_by_label("Grant to").select_option(label="ann@acme.test (user)")
    page.get_by_label("Resource", exact=True).select_option(label="Support bot")
    page.get_by_label("Action").select_option(label="use (includes view)")
    page.get_by_text("Only at certain times (optional)").click()
    page.get_by_label("From").select_option("9")
    page.get_by_label("Until").select_option("17")
    page.get_by_label("Time zone").select_option("America/New_York")
    page.get_by_label("Sat").uncheck()
    page.get_by_label("Sun").uncheck()
    screenshot(page, "authz-grant-form-desktop")
    page.get_by_role("button", name="Grant access").click()
    page.wait_for_url("**/settings/access/")
    expect(page.locator(".messages")).to_contain_text("ann@acme.test now holds “use” on agent:")
    row = page.locator("tr.grant-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Mon–Fri, 09:00–17:00 (America/New_York)")
    grant = Grant.objects.get()
    assert grant.access_control["accessControl"]["allowedDays"] == [1, 2, 3, 4, 5]

    # a group grant on every data source, then the list
    page.get_by_label("Grant to").select_option(label="Support")
    page.get_by_label("Resource type").select_option("data_source")
    page.get_by_label("Resource", exact=True).select_option(label="All data sources")
    page.get_by_label("Action").select_option(label="process (includes view)")
    page.get_by_label("Expires (optional)").fill("2099-01-31T17:00")
    page.get_by_role("button", name="Grant access").click()
    page.wait_for_url("**/settings/access/")
    expect(page.locator("tr.grant-row")).to_have_count(2)
    screenshot(page, "authz-access-desktop")

    # "Why?" pre-fills the try-it form; Explain runs the decision
    page.get_by_role("link", name=re.compile(r"^Why can ann@acme.test use")).click()
    page.wait_for_url("**/settings/access/try/**")
    expect(page.get_by_role("heading", name="Try it", level=1)).to_be_visible()
    expect(page.locator(".verdict")).to_be_visible()
    page.get_by_label("At (optional)").fill("2026-03-09T15:00")  # Monday, 11:00 in New York
    page.get_by_role("button", name="Explain").click()
    page.wait_for_load_state()
    expect(page.locator(".verdict")).to_have_text(re.compile("Allowed"))
    expect(page.get_by_test_id("decided-by")).to_have_text("Grant")
    expect(page.locator(".explain-step--deciding")).to_contain_text("holds \"use\"")
    screenshot(page, "authz-try-allowed-desktop")
    page.get_by_label("At (optional)").fill("2026-03-09T23:30")  # 19:30 in New York: the grant's window is shut
    page.get_by_role("button", name="Explain").click()
    page.wait_for_load_state()
    expect(page.locator(".verdict")).to_have_text(re.compile("Denied"))
    expect(page.get_by_test_id("decided-by")).to_have_text("Default")
    expect(page.locator(".explain-steps")).to_contain_text("does not apply")
    screenshot(page, "authz-try-denied-desktop")

    # revoke
    page.goto("/settings/access/")
    page.get_by_role("button", name=re.compile(r"^Revoke use on agent:")).click()
    page.wait_for_url("**/settings/access/")
    expect(page.locator("tr.grant-row")).to_have_count(1)


def test_separation_of_duties_and_time_windows(new_page: Any, screenshot: Any, world: dict[str, Any]) -> None:
    page = new_page()
    sign_in(page, "owner@acme.test", PASSWORD)
    page.goto("/settings/access/#sod")
    page.get_by_label("A member who holds").select_option("agent:edit")
    page.get_by_label("may not also hold").select_option("agent:deploy")
    page.get_by_label("Why (optional)").fill("Authors may not approve their own agents")
    page.get_by_role("button", name="Add rule").click()
    page.wait_for_load_state()
    expect(page.locator(".sod-rule")).to_contain_text("agent:edit")
    assert SodRule.objects.count() == 1

    page.get_by_label("Grant to").select_option(label="mia@acme.test (manager)")
    page.get_by_label("Resource", exact=True).select_option(label="Support bot")
    page.get_by_label("Action").select_option("agent:deploy")
    page.get_by_role("button", name="Grant access").click()
    page.wait_for_load_state()
    expect(page.locator("#form-errors").first).to_contain_text("Separation of duties: mia@acme.test would hold both")
    assert not Grant.objects.exists()
    screenshot(page, "authz-sod-refused-desktop")

    page.get_by_role("navigation", name="Access").get_by_role("link", name="Time windows").click()
    page.wait_for_url("**/settings/access/windows/")
    page.get_by_role("link", name="Time window of ann@acme.test").click()
    page.get_by_label("From").select_option("22")
    page.get_by_label("Until").select_option("6")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    screenshot(page, "authz-window-edit-desktop")
    page.get_by_role("button", name="Save window").click()
    page.wait_for_url("**/settings/access/windows/")
    expect(page.locator(f'tr[data-member-id="{world["ann"].pk}"]')).to_contain_text("22:00–06:00 (Europe/Berlin)")
    screenshot(page, "authz-windows-desktop")

    Grant.objects.create(org=world["bot"].org, resource_type="agent", resource_id=world["bot"].pk, action="use",
                         user=world["ann"].user, created_at=clock.now(),
                         access_control={"accessControl": {"allowedDays": [1, 2, 3, 4, 5]}})
    phone = new_page(PHONE)
    sign_in(phone, "owner@acme.test", PASSWORD)
    for url, name in (("/settings/access/", "authz-access-phone"), ("/settings/access/windows/", "authz-windows-phone"),
                      (f"/settings/access/try/?member={world['ann'].pk}&action=agent%3Ause&resource=agent%3A"
                       f"{world['bot'].pk}", "authz-try-phone")):
        phone.goto(url)
        no_sideways_scroll(phone)
        screenshot(phone, name)


def test_policy_editor_validates_and_asks_for_a_second_factor(new_page: Any, screenshot: Any, owner: Any,
                                                              world: dict[str, Any], totp_device: Any) -> None:
    page = new_page()
    sign_in(page, "owner@acme.test", PASSWORD)
    phone = new_page(PHONE)
    sign_in(phone, "owner@acme.test", PASSWORD)
    page.goto("/settings/access/policies/")
    expect(page.get_by_text("No policies yet.")).to_be_visible()
    page.get_by_role("link", name="New policy").click()
    page.wait_for_url("**/policies/new/")
    editor = page.get_by_label("Policy (JSON)")
    expect(editor).to_have_value(re.compile('"user.department": "support"'))
    page.get_by_label("Name").fill("Office network only")
    editor.fill('{"policy": {"resource": "agent:*", "action": "use", "effect": "deny",\n'
                '  "conditions": [{"request.ip": {"cidr": "10.0.0.0/33"}}, {"time.hour": {">=": 24}}]}}')
    page.get_by_role("button", name="Create policy").click()
    page.wait_for_load_state()
    errors = page.locator(".path-errors li")
    expect(errors).to_have_count(2)
    expect(errors.nth(0)).to_contain_text("policy.conditions.0.request.ip")
    expect(errors.nth(1)).to_contain_text("policy.conditions.1.time.hour: \">=\" must be between 0 and 23.")
    screenshot(page, "authz-policy-errors-desktop")

    page.get_by_label("Policy (JSON)").fill(
        '{"policy": {"resource": "agent:*", "action": "*", "effect": "deny",\n'
        '  "conditions": [{"request.ip": {"cidr": "203.0.113.0/24"}}]}}')
    _, secret = totp_device(owner.user)
    page.get_by_role("button", name="Create policy").click()
    code = page.locator('input[name="twig_step_up_code"]')
    expect(code).to_be_visible()
    assert not Policy.objects.exists()
    code.fill(oathtool(secret))
    code.press("Enter")
    page.wait_for_url("**/settings/access/policies/")
    expect(page.locator(".messages")).to_contain_text("Created the policy “Office network only”.")
    expect(page.locator("tr.policy-row")).to_contain_text("Deny")
    screenshot(page, "authz-policies-desktop")

    page.get_by_role("button", name="Disable Office network only").click()
    page.wait_for_url("**/settings/access/policies/")
    expect(page.locator("tr.policy-row")).to_contain_text("Disabled")
    page.get_by_role("link", name="Office network only", exact=True).click()
    screenshot(page, "authz-policy-edit-desktop")

    phone.goto("/settings/access/policies/")
    no_sideways_scroll(phone)
    screenshot(phone, "authz-policies-phone")
    phone.goto(f"/settings/access/policies/{Policy.objects.get().pk}/")
    no_sideways_scroll(phone)
    screenshot(phone, "authz-policy-edit-phone")


def test_policies_page_on_the_free_plan(new_page: Any, screenshot: Any, make_org: Any, make_member: Any) -> None:
    free = make_org("free-co", plan="free")
    make_member(free, "super_admin", email="owner@free.test")
    page = new_page()
    sign_in(page, "owner@free.test", PASSWORD)
    page.goto("/settings/access/policies/")
    expect(page.get_by_role("heading", name="Policies need the enterprise plan")).to_be_visible()
    expect(page.get_by_role("link", name="New policy")).to_have_count(0)
    screenshot(page, "authz-policies-free-desktop")


def test_a_member_is_not_allowed(new_page: Any, world: dict[str, Any]) -> None:
    page = new_page()
    sign_in(page, "ann@acme.test", PASSWORD)
    page.get_by_label("Account menu for ann@acme.test").click()
    expect(page.get_by_role("navigation", name="Account").get_by_role("link", name="Access")).to_have_count(0)
    response = page.goto("/settings/access/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
