"""Settings → Security → Access review: admins only, what each row shows (groups, grants, MFA, activity, keys
and their rotate/delete flags), the CSV export, a constant number of queries, Deactivate / Reactivate, the
inactive-member policy form, and hostile input."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.pages.conftest import HOSTILE, field_errors, text
from tests.support.clients import signed_in
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.services import issue_api_key
from twig_auth.audit.models import AuditEvent
from twig_auth.authz.models import Grant
from twig_auth.core import clock
from twig_auth.mfa import recovery
from twig_auth.orgs import policy
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Membership
from twig_auth.reviews.report import review_key, safe_cell
from twig_project.workspace.models import Agent

pytestmark = pytest.mark.django_db
PAGE = "/settings/security/access-review/"
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _fast_keys(settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_BCRYPT_ROUNDS": 4}


@pytest.fixture
def admin(org: Any, owner: Any, make_member: Any) -> Membership:
    return make_member(org, "admin", email="admin@acme.test")


@pytest.fixture
def bob(org: Any, owner: Any, make_member: Any) -> Membership:
    return make_member(org, "user", email="bob@acme.test")


def rows_of(response: Any) -> dict[str, Any]:
    return {row.email: row for row in response.context["rows"]}


def csv_of(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def populate(org: Any, make_member: Any, n: int, tag: str) -> None:
    """``n`` members, each in a group with a grant, with a device, recovery codes and an API key."""
    from twig_auth.mfa import totp

    group = org_services.create_group(org=org, name=f"Group {tag}")
    agent = Agent.objects.create(org=org, name=f"Bot {tag}")
    Grant.objects.create(org=org, resource_type="agent", resource_id=str(agent.pk), action="use", group=group,
                         created_at=clock.now())
    for i in range(n):
        m = make_member(org, "manager", email=f"m{tag}{i}@acme.test")
        org_services.add_to_group(group=group, membership=m)
        Grant.objects.create(org=org, resource_type="agent", resource_id=str(agent.pk), action="edit", user=m.user,
                             created_at=clock.now(), expires_at=clock.now() + 30 * DAY)
        device = totp.new_device(m.user, name="Phone")
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        recovery.generate(m.user)
        issue_api_key(creator=m, name=f"key {tag}{i}", scopes=["read"], environment="live")


# --- who may see it --------------------------------------------------------------------------------------------

def test_only_admins_see_the_page_and_the_export(org, owner, admin, bob, make_member):
    manager = make_member(org, "manager")
    for member in (bob, manager):
        client = signed_in(member)
        for url in (PAGE, PAGE + "?format=csv"):
            response = client.get(url)
            assert response.status_code == 403 and "Only admins" in text(response)
        assert client.post(PAGE, {"action": "deactivate", "member": str(admin.pk)}).status_code == 403
    assert not Membership.objects.filter(deactivated_at__isnull=False).exists()
    anonymous = signed_in(bob)
    anonymous.logout()
    assert anonymous.get(PAGE).status_code == 302
    page = signed_in(admin).get(PAGE)
    assert page.status_code == 200
    assert 'href="/settings/security/access-review/" aria-current="page">Access review</a>' in text(page)
    assert page["Cache-Control"].startswith("max-age=0") or "no-cache" in page["Cache-Control"]


# --- what it shows ---------------------------------------------------------------------------------------------

def test_each_row_shows_groups_grants_mfa_activity_and_keys(org, owner, admin, bob, totp_device):
    group = org_services.create_group(org=org, name="Support")
    org_services.add_to_group(group=group, membership=bob, role="manager")
    agent = Agent.objects.create(org=org, name="Helpdesk bot")
    Grant.objects.create(org=org, resource_type="agent", resource_id=str(agent.pk), action="use", group=group,
                         created_at=clock.now())
    Grant.objects.create(org=org, resource_type="data_source", resource_id="*", action="view", user=bob.user,
                         created_at=clock.now(), expires_at=clock.now() + 10 * DAY)
    Grant.objects.create(org=org, resource_type="agent", resource_id="*", action="manage", user=bob.user,
                         created_at=clock.now(), expires_at=clock.now() - DAY)  # expired: not shown
    totp_device(bob.user)
    recovery.generate(bob.user)
    start = timezone.now()
    with clock.frozen(start - 100 * DAY):
        old, _ = issue_api_key(creator=bob, name="old deploy key", scopes=["read"], environment="live")
    with clock.frozen(start - 10 * DAY):
        unused, _ = issue_api_key(creator=bob, name="never used", scopes=["read"], environment="live")
    fresh, _ = issue_api_key(creator=bob, name="brand new", scopes=["read"], environment="live")
    revoked, _ = issue_api_key(creator=bob, name="gone", scopes=["read"], environment="live")
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=clock.now())
    ApiKey.objects.filter(pk=old.pk).update(last_used_at=start - 95 * DAY)
    Membership.objects.filter(pk=bob.pk).update(last_login_at=start - 3 * DAY)

    response = signed_in(admin).get(PAGE)
    row = rows_of(response)["bob@acme.test"]
    assert row.groups == [("Support", "manager")]
    assert sorted((g.grant.action, g.resource, g.via_group) for g in row.grants) == [
        ("use", "Agent “Helpdesk bot”", "Support"), ("view", "All data sources", "")]
    assert row.mfa_methods == ["totp"] and row.recovery_codes == 10
    assert row.mfa.required is False  # a user: the default policy covers admins only
    assert row.activity.login == start - 3 * DAY
    keys = {k.key.name: k for k in row.keys}
    assert set(keys) == {"old deploy key", "never used", "brand new"}
    assert keys["old deploy key"].flags == ("rotate", "delete") and keys["old deploy key"].age_days == 100
    assert keys["never used"].flags == ("delete",) and keys["never used"].reasons == ("never used",)
    assert keys["brand new"].flags == ()
    assert row.flags == ["keys"]
    body = text(response)
    assert "Helpdesk bot" in body and "via Support" in body and "old deploy key" in body
    assert f"<code>{old.prefix}…</code>" in body and old.hashed_secret not in body


def test_admins_without_mfa_and_inactive_members_are_flagged(org, owner, admin, bob, totp_device):
    totp_device(owner.user)  # the owner's own grace would end before day 31
    org_services.update_org_settings(org=org, patch={"accessReview": {"deactivateAfterDays": 30}})
    rows = rows_of(signed_in(owner).get(PAGE))
    assert rows["admin@acme.test"].flags == ["mfa"] and rows["admin@acme.test"].mfa.required
    assert rows["admin@acme.test"].mfa.in_grace and rows["admin@acme.test"].deactivates_in == 30
    assert rows["owner@acme.test"].deactivates_in is None  # super admins are never deactivated automatically
    with clock.frozen(timezone.now() + 31 * DAY):
        response = signed_in(owner).get(PAGE)
    rows = rows_of(response)
    assert rows["bob@acme.test"].flags == ["inactive"] and rows["bob@acme.test"].inactive_days == 31
    assert "Inactive 31 days" in text(response)
    org_services.deactivate_member(membership=bob)
    rows = rows_of(signed_in(owner).get(PAGE))
    assert rows["bob@acme.test"].flags == ["deactivated"]


def test_filters_by_email_and_status(org, owner, admin, bob):
    org_services.deactivate_member(membership=bob)
    client = signed_in(admin)
    assert list(rows_of(client.get(PAGE + "?q=BOB"))) == ["bob@acme.test"]
    assert list(rows_of(client.get(PAGE + "?status=deactivated"))) == ["bob@acme.test"]
    assert "bob@acme.test" not in rows_of(client.get(PAGE + "?status=active"))
    assert len(rows_of(client.get(PAGE + "?status=bogus"))) == 3


# --- the CSV export --------------------------------------------------------------------------------------------

def test_the_csv_has_every_member_and_their_access(org, owner, admin, bob):
    group = org_services.create_group(org=org, name="Support")
    org_services.add_to_group(group=group, membership=bob)
    with clock.frozen(timezone.now() - 120 * DAY):
        issue_api_key(creator=bob, name="old", scopes=["read"], environment="live")
    org_services.deactivate_member(membership=bob)
    response = signed_in(admin).get(PAGE + "?format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="access-review-acme-')
    rows = {r["email"]: r for r in csv_of(response)}
    assert set(rows) == {"owner@acme.test", "admin@acme.test", "bob@acme.test"}
    assert rows["bob@acme.test"]["status"] == "deactivated" and rows["bob@acme.test"]["groups"] == "Support (member)"
    assert rows["bob@acme.test"]["flags"] == "deactivated keys"
    assert "old (twigsk_live_" in rows["bob@acme.test"]["api_keys"]
    assert "[rotate, delete: older than 90 days; never used]" in rows["bob@acme.test"]["api_keys"]
    assert rows["admin@acme.test"]["mfa_required"] == "yes" and rows["admin@acme.test"]["mfa_deadline"]
    assert rows["owner@acme.test"]["role"] == "super_admin"


def test_csv_cells_cannot_become_spreadsheet_formulas(org, owner, admin, bob):
    issue_api_key(creator=bob, name="=HYPERLINK(\"http://evil.test\")", scopes=["read"], environment="live")
    org_services.create_group(org=org, name="+cmd|' /C calc'!A0")
    row = next(r for r in csv_of(signed_in(admin).get(PAGE + "?format=csv")) if r["email"] == "bob@acme.test")
    assert row["api_keys"].startswith("'=HYPERLINK")
    assert [safe_cell(v) for v in ("=1", "+1", "-1", "@x", "\tx", "ok", None, 3)] == [
        "'=1", "'+1", "'-1", "'@x", "'\tx", "ok", "", "3"]


def test_an_unknown_format_is_a_clear_400(org, owner, admin):
    response = signed_in(admin).get(PAGE + "?format=xlsx")
    assert response.status_code == 400 and "Unknown format" in text(response)


# --- bounded queries -------------------------------------------------------------------------------------------

def test_page_and_export_cost_the_same_queries_for_many_members(org, owner, admin, make_member):
    client = signed_in(admin)
    populate(org, make_member, 2, "a")
    client.get(PAGE)
    with CaptureQueriesContext(connection) as few_page:
        assert client.get(PAGE).status_code == 200
    with CaptureQueriesContext(connection) as few_csv:
        assert len(csv_of(client.get(PAGE + "?format=csv"))) == 4
    populate(org, make_member, 10, "b")
    with CaptureQueriesContext(connection) as many_page:
        response = client.get(PAGE)
    with CaptureQueriesContext(connection) as many_csv:
        rows = csv_of(client.get(PAGE + "?format=csv"))
    assert len(response.context["rows"]) == 14 and len(rows) == 14
    member = rows_of(response)["mb3@acme.test"]
    assert member.mfa_methods == ["totp"] and len(member.keys) == 1 and len(member.grants) == 2
    assert len(many_page.captured_queries) == len(few_page.captured_queries)
    assert len(many_csv.captured_queries) == len(few_csv.captured_queries)
    assert len(many_csv.captured_queries) <= 25, [q["sql"][:80] for q in many_csv.captured_queries]


def test_the_page_is_paginated(org, owner, admin, make_member, settings):
    from twig_auth.reviews import views

    for i in range(5):
        make_member(org, "user", email=f"u{i}@acme.test")
    original = views.PAGE_SIZE
    views.PAGE_SIZE = 3
    try:
        client = signed_in(admin)
        first, last = client.get(PAGE), client.get(PAGE + "?page=3")
        assert len(first.context["rows"]) == 3 and len(last.context["rows"]) == 1
        assert "Page 1 of 3" in text(first)
        assert len(client.get(PAGE + "?page=999999999999").context["rows"]) == 1  # clamped to the last
    finally:
        views.PAGE_SIZE = original


# --- deactivate / reactivate ------------------------------------------------------------------------------------

def test_deactivate_and_reactivate_from_the_page(org, owner, admin, bob, totp_device):
    totp_device(admin.user)
    client = signed_in(admin)
    response = client.post(PAGE, {"action": "deactivate", "member": str(bob.pk), "q": "bob"})
    assert response.status_code == 302 and response["Location"] == PAGE + "?q=bob"
    assert Membership.objects.get(pk=bob.pk).deactivation_reason == "manual"
    assert "is deactivated in Acme" in text(client.get(PAGE))
    assert 'aria-label="Reactivate bob@acme.test"' in text(client.get(PAGE))
    event = AuditEvent.objects.get(event="MEMBER_DEACTIVATED")
    assert event.user_id == admin.user_id and event.details["reason"] == "manual"
    # reactivating gives access back: it asks for a second factor first
    prompt = signed_in(admin, step_up=False).post(PAGE, {"action": "reactivate", "member": str(bob.pk)})
    assert prompt.status_code == 200 and "twig_step_up_code" in text(prompt)
    assert Membership.objects.get(pk=bob.pk).is_deactivated
    assert client.post(PAGE, {"action": "reactivate", "member": str(bob.pk)}).status_code == 302
    assert not Membership.objects.get(pk=bob.pk).is_deactivated
    assert AuditEvent.objects.filter(event="MEMBER_REACTIVATED", user_id=admin.user_id).count() == 1


def test_refusals_are_messages_not_errors(org, owner, admin, bob, make_org):
    client = signed_in(admin)
    assert client.post(PAGE, {"action": "deactivate", "member": str(owner.pk)}).status_code == 302
    assert "above your own" in text(client.get(PAGE))
    page = text(client.get(PAGE))
    assert 'aria-label="Deactivate admin@acme.test"' not in page  # no button on your own row
    assert 'aria-label="Deactivate owner@acme.test"' not in page  # nor on a super admin's, for an admin
    assert 'aria-label="Deactivate bob@acme.test"' in page
    assert 'aria-label="Deactivate admin@acme.test"' in text(signed_in(owner).get(PAGE))
    assert client.post(PAGE, {"action": "deactivate", "member": str(admin.pk)}).status_code == 302
    assert "yourself" in text(client.get(PAGE))
    foreign = org_services.add_member(org=make_org("globex"), user=bob.user)
    assert client.post(PAGE, {"action": "deactivate", "member": str(foreign.pk)}).status_code == 302
    assert "not in this organization" in text(client.get(PAGE))
    assert not Membership.objects.filter(deactivated_at__isnull=False).exists()


@pytest.mark.parametrize("value", [*HOSTILE.values(), "", "-1", "1e3", "99999999999999999999999", str(2**64)])
def test_hostile_member_ids_change_nothing(org, owner, admin, bob, value):
    response = signed_in(admin).post(PAGE, {"action": "deactivate", "member": value})
    assert response.status_code == 302
    assert not Membership.objects.filter(deactivated_at__isnull=False).exists()


@pytest.mark.parametrize("value", list(HOSTILE.values()))
def test_hostile_filters_answer_the_page(org, owner, admin, value):
    client = signed_in(admin)
    for query in ({"q": value}, {"status": value}, {"page": value}, {"q": value, "format": "csv"}):
        response = client.get(PAGE, query)
        assert response.status_code == 200, query
        if "format" not in query:
            assert "<script>alert(1)</script>" not in text(response)


def test_an_unknown_action_is_a_400(org, owner, admin, bob):
    response = signed_in(admin).post(PAGE, {"action": "delete-everyone", "member": str(bob.pk)})
    assert response.status_code == 400 and "Unknown action" in text(response)


# --- the policy form --------------------------------------------------------------------------------------------

def test_the_policy_form_saves_with_a_second_factor_and_validates(org, owner, admin, totp_device):
    totp_device(admin.user)
    prompt = signed_in(admin, step_up=False).post(PAGE, {"action": "policy", "days": "60"})
    assert "twig_step_up_code" in text(prompt)
    org.refresh_from_db()
    assert policy.effective(org)["accessReview"]["deactivateAfterDays"] is None
    client = signed_in(admin)
    assert client.post(PAGE, {"action": "policy", "days": "60"}).status_code == 302
    org.refresh_from_db()
    assert policy.effective(org)["accessReview"]["deactivateAfterDays"] == 60
    assert AuditEvent.objects.filter(event="ORG_SETTINGS_CHANGED").latest("id").details == {"changed": ["accessReview"]}
    page = client.get(PAGE)
    assert "for 60 days are deactivated" in text(page) and page.context["form"]["days"].value() == 60
    for bad in ("-1", "3651", "ten", "1.5"):
        response = client.post(PAGE, {"action": "policy", "days": bad})
        assert response.status_code == 400 and field_errors(response, "days"), bad
    assert client.post(PAGE, {"action": "policy", "days": ""}).status_code == 302  # off
    org.refresh_from_db()
    assert policy.effective(org)["accessReview"]["deactivateAfterDays"] is None
    assert 'for="id_days"' in text(client.get(PAGE))


def test_key_flags_follow_the_settings(settings, org, owner, bob):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "ACCESS_REVIEW_KEY_ROTATE_DAYS": 10,
                          "ACCESS_REVIEW_KEY_UNUSED_DAYS": 5}
    key, _ = issue_api_key(creator=bob, name="k", scopes=["read"], environment="live")
    key.last_used_at = clock.now()
    assert review_key(key, clock.now() + 6 * DAY).flags == ("delete",)
    assert review_key(key, clock.now() + 11 * DAY).flags == ("rotate", "delete")
    key.last_used_at = None
    assert review_key(key, clock.now() + 6 * DAY).flags == ()  # never used, but not a week old
    assert review_key(key, clock.now() + 7 * DAY).reasons == ("never used",)
