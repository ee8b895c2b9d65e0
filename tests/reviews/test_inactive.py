"""Inactive-member deactivation: the org policy key, what counts as activity (login, web session, token
refresh, API-key use), super admins spared, the reactivation floor, and the twig_deactivate_inactive command
(--dry-run, --org, audit)."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from tests.apikeys.conftest import bearer as key_bearer
from tests.conftest import PASSWORD
from tests.support.clients import signed_in
from tests.tokens.conftest import post_json
from twig_auth.apikeys.services import issue_api_key
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.exceptions import InvalidInput
from twig_auth.orgs import policy
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Membership
from twig_auth.reviews.services import deactivate_inactive, inactive_members

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _fast_keys(settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_BCRYPT_ROUNDS": 4}


def limit(org: Any, days: int | None) -> None:
    org_services.update_org_settings(org=org, patch={"accessReview": {"deactivateAfterDays": days}})
    org.refresh_from_db()


def emails(candidates: list[Any]) -> list[str]:
    return sorted(c.email for c in candidates)


def run(*args: str) -> str:
    out = StringIO()
    call_command("twig_deactivate_inactive", *args, stdout=out)
    return out.getvalue()


# --- the policy key ------------------------------------------------------------------------------------------------

def test_the_policy_key_defaults_off_and_validates(org):
    assert policy.defaults()["accessReview"] == {"deactivateAfterDays": None}
    for good in (None, 0, 1, 90, 3650):
        assert policy.validate_patch({"accessReview": {"deactivateAfterDays": good}}, enterprise=False)
    for bad in (-1, 3651, "90", 9.5, True, [90]):
        with pytest.raises(InvalidInput) as exc:
            policy.validate_patch({"accessReview": {"deactivateAfterDays": bad}}, enterprise=False)
        assert list(exc.value.errors) == ["accessReview.deactivateAfterDays"]
    with pytest.raises(InvalidInput) as exc:
        policy.validate_patch({"accessReview": {"after": 3}}, enterprise=True)
    assert list(exc.value.errors) == ["accessReview.after"]
    limit(org, 30)
    assert policy.effective(org)["accessReview"] == {"deactivateAfterDays": 30}


def test_the_setting_gives_the_default(settings, org):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "DEACTIVATE_INACTIVE_AFTER_DAYS": 45}
    assert policy.effective(org)["accessReview"]["deactivateAfterDays"] == 45


def test_the_policy_is_available_on_every_plan(make_org):
    free = make_org("small", plan="free")
    limit(free, 60)
    assert policy.effective(free)["accessReview"]["deactivateAfterDays"] == 60


# --- what counts as activity ---------------------------------------------------------------------------------------

def test_each_kind_of_activity_keeps_a_member_and_idle_ones_go(org, owner, make_member):
    """Members join now; 20 days later some sign in, browse, refresh a token or use a key; at day 45 with a
    30-day limit only the idle ones (and never the idle super admin) are deactivated."""
    limit(org, 30)
    idle = make_member(org, "user", email="idle@acme.test")
    idle_manager = make_member(org, "manager", email="idle-manager@acme.test")
    make_member(org, "user", email="login@acme.test")
    browser = make_member(org, "user", email="browser@acme.test")
    tokens = make_member(org, "user", email="tokens@acme.test")
    keyed = make_member(org, "user", email="keyed@acme.test")
    _, plaintext = issue_api_key(creator=keyed, name="ci", scopes=["read"], environment="live")
    start = timezone.now()
    with clock.frozen(start + 20 * DAY):
        client = Client()
        assert client.post("/login/", {"email": "login@acme.test", "password": PASSWORD}).status_code == 302
        assert signed_in(browser).get("/").status_code == 200
        pair = post_json(Client(), "/api/auth/token", {"email": "tokens@acme.test", "password": PASSWORD}).json()
        Membership.objects.filter(pk=tokens.pk).update(last_login_at=None)  # only the refresh should count
    with clock.frozen(start + 25 * DAY):
        refreshed = post_json(Client(), "/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]})
        assert refreshed.status_code == 200
        assert Client().get("/api/agents", **key_bearer(plaintext)).status_code == 200
    with clock.frozen(start + 45 * DAY):
        assert emails(inactive_members(org)) == ["idle-manager@acme.test", "idle@acme.test"]
    with clock.frozen(start + 51 * DAY):
        found = inactive_members(org)
        assert emails(found) == ["browser@acme.test", "idle-manager@acme.test", "idle@acme.test", "login@acme.test"]
        assert {c.email: c.inactive_days for c in found} == {
            "browser@acme.test": 31, "idle-manager@acme.test": 51, "idle@acme.test": 51, "login@acme.test": 31}
    with clock.frozen(start + 56 * DAY):
        assert emails(inactive_members(org)) == [
            "browser@acme.test", "idle-manager@acme.test", "idle@acme.test", "keyed@acme.test", "login@acme.test",
            "tokens@acme.test"]  # the owner (a super admin, idle too) is never listed
    assert idle.pk and owner.pk and idle_manager.pk


def test_the_browsing_session_counts_for_the_org_it_is_in(org, owner, make_member):
    limit(org, 30)
    browser = make_member(org, "user", email="browser@acme.test")
    start = timezone.now()
    with clock.frozen(start + 20 * DAY):
        client = signed_in(browser)
        assert client.get("/").status_code == 200  # the session now records the org and its activity
    with clock.frozen(start + 26 * DAY):
        assert client.get("/").context["membership"].pk == browser.pk  # same session, moves last_seen forward
    with clock.frozen(start + 55 * DAY):
        assert emails(inactive_members(org)) == []  # 29 days since the last request (35 since the first)
    with clock.frozen(start + 57 * DAY):
        assert emails(inactive_members(org)) == ["browser@acme.test"]


def test_deactivation_through_the_service_then_reactivation_counts_afresh(org, owner, make_member):
    limit(org, 30)
    idle = make_member(org, "user", email="idle@acme.test")
    start = timezone.now()
    with clock.frozen(start + 31 * DAY):
        done = deactivate_inactive(org)
        assert emails(done) == ["idle@acme.test"]
        event = AuditEvent.objects.get(event="MEMBER_DEACTIVATED")
        assert event.details["reason"] == "inactive" and event.details["limitDays"] == 30
        assert event.details["inactiveDays"] == 31 and event.user_id is None
        assert deactivate_inactive(org) == []  # already deactivated
        org_services.reactivate_member(membership=idle)
    with clock.frozen(start + 40 * DAY):
        assert deactivate_inactive(org) == []  # reactivated 9 days ago
    with clock.frozen(start + 62 * DAY):
        assert emails(deactivate_inactive(org)) == ["idle@acme.test"]


def test_a_login_between_listing_and_deactivating_keeps_the_member(org, owner, make_member, monkeypatch):
    limit(org, 30)
    make_member(org, "user", email="late@acme.test")
    start = timezone.now()
    from twig_auth.reviews import services

    real = services.inactive_members

    def listed_then_signed_in(o: Any, **kw: Any) -> list[Any]:
        found = real(o, **kw)
        Membership.objects.filter(user__email="late@acme.test").update(last_login_at=clock.now())
        return found

    monkeypatch.setattr(services, "inactive_members", listed_then_signed_in)
    with clock.frozen(start + 31 * DAY):
        assert deactivate_inactive(org) == []
    assert not Membership.objects.filter(deactivated_at__isnull=False).exists()


def test_off_means_nobody(org, owner, make_member):
    make_member(org, "user")
    with clock.frozen(timezone.now() + 400 * DAY):
        assert inactive_members(org) == []
        limit(org, 0)
        assert inactive_members(org) == []


# --- the command -----------------------------------------------------------------------------------------------------

def test_the_command_dry_run_lists_and_changes_nothing(org, owner, make_member, make_org):
    limit(org, 30)
    make_member(org, "user", email="idle@acme.test")
    other = make_org("globex")
    org_services.add_member(org=other, user=make_member(org, "manager", email="two@acme.test").user)
    with clock.frozen(timezone.now() + 31 * DAY):
        out = run("--dry-run")
    assert "acme: would deactivate idle@acme.test (user), inactive for 31 days" in out
    assert "acme: would deactivate two@acme.test (manager)" in out
    assert "globex" not in out  # its policy is off
    assert "acme: 2 members to deactivate (limit 30 days)" in out and "2 members to deactivate." in out
    assert not Membership.objects.filter(deactivated_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(event="MEMBER_DEACTIVATED").exists()


def test_the_command_deactivates_per_org_and_only_the_named_org(org, owner, make_member, make_org):
    limit(org, 30)
    other = make_org("globex")
    limit(other, 10)
    make_member(org, "user", email="idle@acme.test")
    theirs = make_member(other, "user", email="idle@globex.test")
    with clock.frozen(timezone.now() + 31 * DAY):
        out = run("--org", "globex")
        assert "globex: deactivated idle@globex.test" in out and "acme" not in out
        assert Membership.objects.filter(deactivated_at__isnull=False).get().pk == theirs.pk
        out = run()
    assert "acme: deactivated idle@acme.test" in out and "1 member deactivated." in out
    assert AuditEvent.objects.filter(event="MEMBER_DEACTIVATED").count() == 2


def test_the_command_refuses_an_unknown_org_and_says_when_policy_is_off(org, owner):
    with pytest.raises(CommandError, match="No organization"):
        run("--org", "nope")
    assert "deactivation is off" in run("--org", "acme")


def test_the_migration_fills_last_login_from_the_users_last_login(org, owner, make_member):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("twig_auth.migrations.0015_access_reviews")
    seen = make_member(org, "user", email="seen@acme.test")
    never = make_member(org, "user", email="never@acme.test")
    when = timezone.now() - 40 * DAY
    type(seen.user).objects.filter(pk=seen.user_id).update(last_login=when)
    Membership.objects.update(last_login_at=None)
    migration.backfill_last_login(apps, None)
    assert Membership.objects.get(pk=seen.pk).last_login_at == when
    assert Membership.objects.get(pk=never.pk).last_login_at is None
