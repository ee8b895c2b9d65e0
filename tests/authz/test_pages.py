"""Settings → Access pages: grants, separation of duties, time windows, policies and "try it" (explain)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from twig_auth.audit.models import AuditEvent
from twig_auth.authz.models import Grant, Policy, SodRule
from twig_auth.core import clock
from twig_auth.orgs.models import Group, GroupMembership
from twig_project.workspace.models import Agent

pytestmark = pytest.mark.django_db

ACCESS = "/settings/access/"
WEEKDAYS_9_TO_5 = {"accessControl": {"allowedHours": {"start": 9, "end": 17, "timezone": "America/New_York"},
                                     "allowedDays": [1, 2, 3, 4, 5]}}
# Monday 2026-03-09 15:00 UTC is 11:00 in New York; 23:30 UTC is 19:30 there.
MONDAY_11_NY = "2026-03-09T11:00"


@pytest.fixture
def admin(org: Any, owner: Any, make_member: Any) -> Any:
    return make_member(org, "admin", email="ada@acme.test")


@pytest.fixture
def ann(org: Any, make_member: Any) -> Any:
    return make_member(org, "user", email="ann@acme.test")


@pytest.fixture
def bot(org: Any, owner: Any) -> Agent:
    return Agent.objects.create(org=org, name="Support bot", created_by=owner.user)


@pytest.fixture
def as_admin(client: Any, admin: Any) -> Any:
    client.force_login(admin.user, backend="twig_auth.passwords.backends.EmailBackend")
    return client


@pytest.fixture
def stepped(as_admin: Any, stepped_up: Any) -> Any:
    return stepped_up()


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def errors(response: Any, field_id: str) -> str:
    """The error messages shown under one field, joined by " | "."""
    match = re.search(rf'id="{field_id}_error">(.*?)</ul>', text(response))
    return " | ".join(m.strip() for m in re.findall(r"<li>(.*?)</li>", match.group(1))) if match else ""


def grant_post(client: Any, **fields: Any) -> Any:
    data = {"window_start": "", "window_end": "", "window_timezone": "UTC",
            "window_days": ["1", "2", "3", "4", "5", "6", "7"], **fields}
    return client.post(ACCESS, data)


# --- who may see the pages ------------------------------------------------------------------------------

PAGES = [ACCESS, ACCESS + "windows/", ACCESS + "policies/", ACCESS + "policies/new/", ACCESS + "try/"]


@pytest.mark.parametrize("role", ["user", "manager"])
@pytest.mark.parametrize("url", PAGES)
def test_members_below_admin_get_the_not_allowed_page(client: Any, org: Any, owner: Any, make_member: Any,
                                                      role: str, url: str) -> None:
    member = make_member(org, role)
    client.force_login(member.user, backend="twig_auth.passwords.backends.EmailBackend")
    response = client.get(url)
    assert response.status_code == 403
    assert "Not allowed" in text(response) and "Only admins of the organization" in text(response)


def test_anonymous_visitors_are_sent_to_sign_in(client: Any) -> None:
    response = client.get(ACCESS)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_account_menu_links_access_for_admins_only(as_admin: Any, client: Any, ann: Any) -> None:
    assert 'href="/settings/access/">Access</a>' in as_admin.get("/settings/sessions/").content.decode()
    client.force_login(ann.user, backend="twig_auth.passwords.backends.EmailBackend")
    assert 'href="/settings/access/"' not in client.get("/settings/sessions/").content.decode()


def test_pages_are_not_cached(as_admin: Any) -> None:
    for url in PAGES:
        response = as_admin.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


# --- grants ---------------------------------------------------------------------------------------------


def test_admin_grants_a_member_use_of_one_agent(as_admin: Any, admin: Any, ann: Any, bot: Agent) -> None:
    page = text(as_admin.get(ACCESS))
    assert "No grants yet." in page and "Support bot" in page and "ann@acme.test (user)" in page
    response = grant_post(as_admin, grantee=f"member:{ann.pk}", resource_type="agent", resource=f"agent:{bot.pk}",
                          action="agent:use")
    assert response.status_code == 302, text(response)[:2000]
    grant = Grant.objects.get()
    assert (grant.user_id, grant.resource, grant.action, grant.expires_at, grant.access_control) == (
        ann.user_id, f"agent:{bot.pk}", "use", None, None)
    assert grant.created_by_id == admin.user_id
    page = text(as_admin.get(ACCESS))
    assert "ann@acme.test now holds “use” on agent:" in page
    row = re.search(r'<tr class="grant-row"[^>]*>.*?</tr>', page).group(0)
    assert "Support bot" in row and "ann@acme.test" in row and "ada@acme.test" in row and "Any time" in row
    why = f"/settings/access/try/?member={ann.pk}&amp;action=agent%3Ause&amp;resource=agent%3A{bot.pk}"
    assert why in row


def test_a_group_grant_on_every_agent_with_expiry_and_window(as_admin: Any, org: Any, ann: Any) -> None:
    support = Group.objects.create(org=org, name="Support")
    GroupMembership.objects.create(group=support, membership=ann)
    response = grant_post(as_admin, grantee=f"group:{support.pk}", resource_type="agent", resource="agent:*",
                          action="agent:edit", expires_at="2099-01-31T17:00", window_start="9", window_end="17",
                          window_timezone="America/New_York", window_days=["1", "2", "3", "4", "5"])
    assert response.status_code == 302, text(response)[:3000]
    grant = Grant.objects.get()
    assert grant.group_id == support.pk and grant.resource_id == "*" and grant.action == "edit"
    assert grant.access_control == WEEKDAYS_9_TO_5
    # the expiry was typed in the org's time zone (UTC by default)
    assert grant.expires_at == dt.datetime(2099, 1, 31, 17, 0, tzinfo=dt.UTC)
    row = text(as_admin.get(ACCESS))
    assert "All agents" in row and "Mon–Fri, 09:00–17:00 (America/New_York)" in row and "Jan 31, 2099, 17:00" in row


def test_the_expiry_is_read_in_the_org_time_zone(as_admin: Any, org: Any, ann: Any, bot: Agent) -> None:
    org.settings = {"timezone": "Europe/Berlin"}
    org.save()
    grant_post(as_admin, grantee=f"member:{ann.pk}", resource_type="agent", resource=f"agent:{bot.pk}",
               action="agent:view", expires_at="2099-07-01T12:00")
    assert Grant.objects.get().expires_at == dt.datetime(2099, 7, 1, 10, 0, tzinfo=dt.UTC)


def test_grant_form_errors_are_shown_next_to_their_fields(as_admin: Any, ann: Any, bot: Agent) -> None:
    response = grant_post(as_admin, grantee=f"member:{ann.pk}", resource_type="agent", resource=f"agent:{bot.pk}",
                          action="data_source:view", window_start="9")
    assert response.status_code == 200
    page = text(response)
    assert "Choose an action of the type “agent”." in errors(response, "id_action")
    assert "Choose when the window ends." in errors(response, "id_window_end")
    assert "Please fix the problems highlighted below." in page
    # the service's own checks: an expiry in the past
    response = grant_post(as_admin, grantee=f"member:{ann.pk}", resource_type="agent", resource=f"agent:{bot.pk}",
                          action="agent:use", expires_at="2001-01-01T00:00")
    assert "Must be in the future." in errors(response, "id_expires_at")
    # no day chosen
    response = grant_post(as_admin, grantee=f"member:{ann.pk}", resource_type="agent", resource=f"agent:{bot.pk}",
                          action="agent:use", window_days=[])
    assert "Choose at least one day." in errors(response, "id_window_days")
    assert not Grant.objects.exists()


def test_a_duplicate_grant_is_refused_with_the_reason(as_admin: Any, ann: Any, bot: Agent) -> None:
    fields = {"grantee": f"member:{ann.pk}", "resource_type": "agent", "resource": f"agent:{bot.pk}",
              "action": "agent:use"}
    grant_post(as_admin, **fields)
    response = grant_post(as_admin, **fields)
    assert response.status_code == 409
    assert "already holds “use”".replace("“", '"').replace("”", '"') in text(response).replace("&quot;", '"')
    assert Grant.objects.count() == 1


def test_another_orgs_resource_or_member_cannot_be_chosen(as_admin: Any, make_org: Any, make_member: Any,
                                                          ann: Any) -> None:
    other = make_org("globex")
    theirs = Agent.objects.create(org=other, name="Their bot")
    stranger = make_member(other, "user", email="eve@globex.test")
    page = text(as_admin.get(ACCESS))
    assert "Their bot" not in page and "eve@globex.test" not in page
    response = grant_post(as_admin, grantee=f"member:{stranger.pk}", resource_type="agent",
                          resource=f"agent:{theirs.pk}", action="agent:use")
    assert response.status_code == 200 and not Grant.objects.exists()
    assert "Select a valid choice" in errors(response, "id_grantee")
    assert "Select a valid choice" in errors(response, "id_resource")


def test_revoke_a_grant(as_admin: Any, org: Any, ann: Any, bot: Agent) -> None:
    grant_post(as_admin, grantee=f"member:{ann.pk}", resource_type="agent", resource=f"agent:{bot.pk}",
               action="agent:use")
    grant = Grant.objects.get()
    response = as_admin.post(f"{ACCESS}grants/{grant.pk}/revoke/", follow=True)
    assert "Revoked “use” on agent:" in text(response)
    assert not Grant.objects.exists()
    assert AuditEvent.objects.filter(event="PERMISSION_REVOKED").count() == 1
    again = as_admin.post(f"{ACCESS}grants/{grant.pk}/revoke/", follow=True)
    assert "That grant was already revoked." in text(again)
    assert as_admin.get(f"{ACCESS}grants/{grant.pk}/revoke/").status_code == 405


def test_another_orgs_grant_cannot_be_revoked(as_admin: Any, make_org: Any, make_member: Any) -> None:
    other = make_org("globex")
    eve = make_member(other, "user", email="eve@globex.test")
    theirs = Grant.objects.create(org=other, resource_type="agent", resource_id="*", action="view", user=eve.user,
                                  created_at=clock.now())
    response = as_admin.post(f"{ACCESS}grants/{theirs.pk}/revoke/", follow=True)
    assert "already revoked" in text(response)
    assert Grant.objects.filter(pk=theirs.pk).exists()


# --- separation of duties -------------------------------------------------------------------------------


def test_sod_rule_refuses_a_conflicting_grant_and_can_be_removed(as_admin: Any, org: Any, make_member: Any,
                                                                 bot: Agent) -> None:
    mia = make_member(org, "manager", email="mia@acme.test")  # managers hold agent:edit by role
    response = as_admin.post(ACCESS + "sod/", {"first": "agent:edit", "second": "agent:deploy",
                                               "description": "Authors may not approve"}, follow=True)
    page = text(response)
    assert "No member may now hold both agent:edit and agent:deploy." in page
    assert "Authors may not approve" in page
    rule = SodRule.objects.get()
    response = grant_post(as_admin, grantee=f"member:{mia.pk}", resource_type="agent", resource=f"agent:{bot.pk}",
                          action="agent:deploy")
    assert response.status_code == 409
    page = text(response).replace("&quot;", '"')
    assert 'Separation of duties: mia@acme.test would hold both "agent:edit" and "agent:deploy"' in page
    assert not Grant.objects.exists()
    response = as_admin.post(f"{ACCESS}sod/{rule.pk}/remove/", follow=True)
    assert "Removed the rule agent:edit ✕ agent:deploy." in text(response)
    assert grant_post(as_admin, grantee=f"member:{mia.pk}", resource_type="agent", resource=f"agent:{bot.pk}",
                      action="agent:deploy").status_code == 302


def test_sod_form_errors(as_admin: Any) -> None:
    response = as_admin.post(ACCESS + "sod/", {"first": "agent:edit", "second": "agent:edit"})
    assert "Choose a permission different" in errors(response, "id_sod_second")
    response = as_admin.post(ACCESS + "sod/", {"first": "agent:manage", "second": "agent:use"})
    assert "includes" in errors(response, "id_sod_second")
    assert not SodRule.objects.exists()


# --- time windows ---------------------------------------------------------------------------------------


def test_set_and_remove_a_members_time_window(as_admin: Any, ann: Any) -> None:
    page = text(as_admin.get(ACCESS + "windows/"))
    assert "ann@acme.test" in page and "Any time" in page
    url = f"{ACCESS}windows/member/{ann.pk}/"
    assert "Time window of ann@acme.test" in text(as_admin.get(url))
    response = as_admin.post(url, {"window_start": "9", "window_end": "17", "window_timezone": "America/New_York",
                                   "window_days": ["1", "2", "3", "4", "5"]}, follow=True)
    assert "Saved the time window of ann@acme.test." in text(response)
    assert "Mon–Fri, 09:00–17:00 (America/New_York)" in text(response)
    ann.refresh_from_db()
    assert ann.access_control == WEEKDAYS_9_TO_5
    # the form shows the stored window
    page = as_admin.get(url).content.decode()
    assert re.search(r'<option value="9" selected>09:00</option>', page)
    assert re.search(r'<option value="America/New_York" selected>', page)
    response = as_admin.post(url, {"clear": "1"}, follow=True)
    assert "ann@acme.test can now act at any time." in text(response)
    ann.refresh_from_db()
    assert ann.access_control is None


def test_days_only_window_keeps_its_time_zone(as_admin: Any, ann: Any) -> None:
    as_admin.post(f"{ACCESS}windows/member/{ann.pk}/", {"window_start": "", "window_end": "",
                                                         "window_timezone": "Asia/Tokyo", "window_days": ["6", "7"]})
    ann.refresh_from_db()
    assert ann.access_control == {"accessControl": {"allowedHours": {"start": 0, "end": 24, "timezone": "Asia/Tokyo"},
                                                    "allowedDays": [6, 7]}}
    assert "Sat, Sun (Asia/Tokyo)" in text(as_admin.get(ACCESS + "windows/"))


def test_a_groups_window_and_the_admins_rank_limit(as_admin: Any, org: Any, owner: Any) -> None:
    support = Group.objects.create(org=org, name="Support")
    url = f"{ACCESS}windows/group/{support.pk}/"
    as_admin.post(url, {"window_start": "22", "window_end": "6", "window_timezone": "UTC",
                        "window_days": ["1", "2", "3", "4", "5", "6", "7"]})
    support.refresh_from_db()
    assert support.access_control == {"accessControl": {"allowedHours": {"start": 22, "end": 6, "timezone": "UTC"}}}
    # an admin cannot restrict the super admin
    response = as_admin.post(f"{ACCESS}windows/member/{owner.pk}/",
                             {"window_start": "9", "window_end": "17", "window_timezone": "UTC",
                              "window_days": ["1", "2", "3", "4", "5"]})
    assert response.status_code == 403 and "You cannot restrict a role above your own." in text(response)


def test_windows_of_other_orgs_are_not_found(as_admin: Any, make_org: Any, make_member: Any) -> None:
    eve = make_member(make_org("globex"), "user", email="eve@globex.test")
    assert as_admin.get(f"{ACCESS}windows/member/{eve.pk}/").status_code == 404
    assert as_admin.get(f"{ACCESS}windows/other/{eve.pk}/").status_code == 404


# --- policies -------------------------------------------------------------------------------------------

GOOD = ('{"policy": {"resource": "agent:*", "action": "use", "effect": "deny",'
        ' "conditions": [{"time.hour": {">=": 22}}]}}')


def test_policies_need_the_enterprise_plan(client: Any, make_org: Any, make_member: Any, stepped_up: Any) -> None:
    free = make_org("free-co", plan="free")
    boss = make_member(free, "super_admin", email="owner@free.test")
    client.force_login(boss.user, backend="twig_auth.passwords.backends.EmailBackend")
    stepped_up()
    page = text(client.get(ACCESS + "policies/"))
    assert "Policies need the enterprise plan" in page and "Free" in page and "New policy" not in page
    assert "Policies need the enterprise plan" in text(client.get(ACCESS + "policies/new/"))
    response = client.post(ACCESS + "policies/new/", {"name": "Night", "document": GOOD, "enabled": "on"})
    assert response.status_code == 403 and not Policy.objects.exists()


def test_create_a_policy_after_a_second_factor(as_admin: Any, stepped_up: Any, org: Any) -> None:
    page = as_admin.get(ACCESS + "policies/new/").content.decode()
    assert "&quot;user.department&quot;: &quot;support&quot;" in page  # the example is prefilled
    data = {"name": "No night use", "description": "", "document": GOOD, "enabled": "on"}
    prompt = as_admin.post(ACCESS + "policies/new/", data)
    assert prompt.status_code in (200, 403) and "Confirm it's you" in text(prompt).replace("&#x27;", "'")
    assert not Policy.objects.exists()
    stepped_up()
    response = as_admin.post(ACCESS + "policies/new/", data, follow=True)
    assert "Created the policy “No night use”. It applies from now on." in text(response)
    policy = Policy.objects.get()
    assert policy.enabled and policy.document["policy"]["effect"] == "deny"
    row = text(response)
    assert "No night use" in row and "Deny" in row and "agent:*" in row and "Enabled" in row
    assert AuditEvent.objects.filter(event="POLICY_CREATED").count() == 1


def test_policy_errors_are_listed_with_their_paths(stepped: Any) -> None:
    bad = ('{"policy": {"resource": "agent:*", "action": "use", "effect": "maybe",'
           ' "conditions": [{"user.role": "manager"}, {"time.hour": {">=": 25}}]}}')
    response = stepped.post(ACCESS + "policies/new/", {"name": "Bad", "document": bad, "enabled": "on"})
    assert response.status_code == 200
    page = text(response).replace("&quot;", '"').replace("&gt;", ">")
    assert '<code class="path-errors__path">policy.effect</code>: <span>Must be "allow" or "deny".</span>' in page
    assert '<code class="path-errors__path">policy.conditions.1.time.hour</code>: <span>">=" must be between 0 ' \
           "and 23.</span>" in page
    assert "The policy has 2 problems, listed below the editor." in page
    assert "maybe" in page  # what was typed is kept
    response = stepped.post(ACCESS + "policies/new/", {"name": "Bad", "document": '{"policy": {', "enabled": "on"})
    assert re.search(r"This is not valid JSON: .* \(line 1, column \d+\)\.", text(response))
    assert not Policy.objects.exists()


def test_a_policy_name_is_unique(stepped: Any) -> None:
    stepped.post(ACCESS + "policies/new/", {"name": "Night", "document": GOOD, "enabled": "on"})
    response = stepped.post(ACCESS + "policies/new/", {"name": "night", "document": GOOD, "enabled": "on"})
    assert "A policy named" in errors(response, "id_name")


def test_edit_disable_enable_and_delete_a_policy(stepped: Any, org: Any) -> None:
    stepped.post(ACCESS + "policies/new/", {"name": "Night", "document": GOOD, "enabled": "on"})
    policy = Policy.objects.get()
    url = f"{ACCESS}policies/{policy.pk}/"
    page = stepped.get(url).content.decode()
    assert "Edit “Night”" in page and "&quot;time.hour&quot;" in page
    changed = GOOD.replace("22", "23")
    response = stepped.post(url, {"name": "Late night", "description": "After 23:00", "document": changed},
                            follow=True)
    assert "Saved the policy “Late night”. It is disabled, so it does not apply yet." in text(response)
    policy.refresh_from_db()
    assert policy.name == "Late night" and not policy.enabled
    assert policy.document["policy"]["conditions"] == [{"time.hour": {">=": 23}}]
    response = stepped.post(url + "toggle/", follow=True)
    assert "“Late night” is enabled." in text(response)
    policy.refresh_from_db()
    assert policy.enabled
    confirm = text(stepped.get(url + "delete/"))
    assert "Delete “Late night”?" in confirm and "to pause it instead, disable it" in confirm
    response = stepped.post(url + "delete/", follow=True)
    assert "Deleted the policy “Late night”." in text(response)
    assert not Policy.objects.exists()
    assert stepped.get(url).status_code == 404


def test_toggling_and_deleting_ask_for_a_second_factor(as_admin: Any, org: Any) -> None:
    policy = Policy.objects.create(org=org, name="Night", document={"policy": {
        "resource": "*", "action": "*", "effect": "deny", "conditions": []}}, created_at=clock.now(),
        updated_at=clock.now())
    for path in ("toggle/", "delete/"):
        prompt = as_admin.post(f"{ACCESS}policies/{policy.pk}/{path}")
        assert "twig_step_up_code" in prompt.content.decode() or prompt.status_code == 403
    policy.refresh_from_db()
    assert policy.enabled


def test_another_orgs_policy_is_not_found(stepped: Any, make_org: Any) -> None:
    other = make_org("globex")
    theirs = Policy.objects.create(org=other, name="Theirs", document={"policy": {
        "resource": "*", "action": "*", "effect": "deny", "conditions": []}}, created_at=clock.now(),
        updated_at=clock.now())
    for path in ("", "delete/"):
        assert stepped.get(f"{ACCESS}policies/{theirs.pk}/{path}").status_code == 404
    assert stepped.post(f"{ACCESS}policies/{theirs.pk}/toggle/").status_code == 404
    assert Policy.objects.filter(pk=theirs.pk, enabled=True).exists()


# --- try it ---------------------------------------------------------------------------------------------


def test_try_it_explains_a_denial_and_an_allowance(as_admin: Any, ann: Any, bot: Agent) -> None:
    page = text(as_admin.get(ACCESS + "try/"))
    assert "Choose a member, a resource and an action" in page
    query = {"member": ann.pk, "action": "agent:use", "resource": f"agent:{bot.pk}"}
    page = text(as_admin.get(ACCESS + "try/", query))
    assert 'class="verdict verdict--denied"' in page and "Denied" in page
    assert re.search(r'data-testid="decided-by">Default<', page)
    assert "No role, ownership, grant or policy allows" in page.replace("&quot;", '"')
    assert page.count('class="explain-step ') >= 4
    grant_post(as_admin, grantee=f"member:{ann.pk}", resource_type="agent", resource=f"agent:{bot.pk}",
               action="agent:edit")
    page = text(as_admin.get(ACCESS + "try/", query)).replace("&quot;", '"')
    assert 'class="verdict verdict--allowed"' in page
    assert re.search(r'data-testid="decided-by">Grant<', page)
    assert 'the member holds "edit" on agent:' in page
    assert "explain-step--deciding" in page
    assert not AuditEvent.objects.filter(event="AUTHORIZATION_DENIED").exists()  # explaining is not acting


def test_try_it_at_a_chosen_time_checks_the_members_window(as_admin: Any, org: Any, ann: Any, bot: Agent) -> None:
    ann.access_control = WEEKDAYS_9_TO_5
    ann.save()
    Grant.objects.create(org=org, resource_type="agent", resource_id="*", action="use", user=ann.user,
                         created_at=clock.now())
    query = {"member": ann.pk, "action": "agent:use", "resource": f"agent:{bot.pk}"}
    inside = text(as_admin.get(ACCESS + "try/", {**query, "at": "2026-03-09T15:00"}))  # 11:00 in New York
    assert "verdict--allowed" in inside and "Mon Mar 9, 2026, 15:00 (UTC)" in inside
    outside = text(as_admin.get(ACCESS + "try/", {**query, "at": "2026-03-09T23:30"}))  # 19:30 in New York
    assert "verdict--denied" in outside and re.search(r'data-testid="decided-by">Time window<', outside)
    assert "outside the allowed hours 09:00–17:00 America/New_York" in outside


def test_try_it_uses_the_request_details_for_policies(as_admin: Any, org: Any, ann: Any, bot: Agent,
                                                      django_capture_on_commit_callbacks: Any) -> None:
    Grant.objects.create(org=org, resource_type="agent", resource_id="*", action="use", user=ann.user,
                         created_at=clock.now())
    from twig_auth.authz import services
    from twig_auth.core.context import RequestContext

    with django_capture_on_commit_callbacks(execute=True):  # the new policy version is published on commit
        services.create_policy(org=org, name="Office only", context=RequestContext.system(), document={"policy": {
            "resource": "agent:*", "action": "*", "effect": "deny",
            "conditions": [{"request.ip": {"cidr": "203.0.113.0/24"}}]}})
    query = {"member": ann.pk, "action": "agent:use", "resource": f"agent:{bot.pk}"}
    blocked = text(as_admin.get(ACCESS + "try/", {**query, "ip": "203.0.113.9"})).replace("&quot;", '"')
    assert "verdict--denied" in blocked and re.search(r'data-testid="decided-by">Policy<', blocked)
    assert 'policy "Office only"' in blocked
    assert "verdict--allowed" in text(as_admin.get(ACCESS + "try/", {**query, "ip": "198.51.100.1"}))


def test_try_it_form_errors_and_prefill(as_admin: Any, ann: Any, bot: Agent) -> None:
    response = as_admin.get(ACCESS + "try/", {"member": ann.pk, "action": "data_source:view",
                                              "resource": f"agent:{bot.pk}"})
    assert response.status_code == 400
    assert errors(response, "id_action") == "Choose an action of agents: the resource is an agent."
    # a "Why?" link with only a member pre-fills the form without running a decision
    page = as_admin.get(ACCESS + "try/", {"member": ann.pk}).content.decode()
    assert re.search(rf'<option value="{ann.pk}" selected>ann@acme.test \(user\)</option>', page)
    assert "verdict" not in page and "field__errors" not in page
    gone = as_admin.get(ACCESS + "try/", {"member": ann.pk, "action": "agent:use", "resource": "agent:agt_nope"})
    assert gone.status_code == 400


def test_the_grants_page_costs_the_same_queries_for_many_rows(as_admin: Any, org: Any, make_member: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def grants(n: int) -> None:
        for _ in range(n):
            member = make_member(org, "user")
            agent = Agent.objects.create(org=org, name=f"Bot {member.pk}")
            Grant.objects.create(org=org, resource_type="agent", resource_id=agent.pk, action="use",
                                 user=member.user, created_by=member.user, created_at=clock.now())
        group = Group.objects.create(org=org, name=f"G{n}")
        Grant.objects.create(org=org, resource_type="data_source", resource_id="*", action="view", group=group,
                             created_at=clock.now())

    grants(2)
    as_admin.get(ACCESS)
    with CaptureQueriesContext(connection) as few:
        as_admin.get(ACCESS)
    grants(8)
    with CaptureQueriesContext(connection) as many:
        page = as_admin.get(ACCESS)
    assert page.content.decode().count('<tr class="grant-row') == 12
    assert len(many.captured_queries) == len(few.captured_queries)
