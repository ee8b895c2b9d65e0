"""Retention: ``twig_audit_purge`` deletes each chain's events older than its org's ``auditRetentionDays`` (90 at
most off the enterprise plan), in batches, moves the chain's anchor so what is left still verifies, and records
one ``AUDIT_PURGED`` per chain that lost events."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from twig_auth.audit import chain
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditChainHead, AuditEvent
from twig_auth.audit.retention import purge, retention_days
from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.orgs.models import Organization

NOW = dt.datetime(2031, 6, 1, 12, 0, tzinfo=dt.UTC)
CTX = RequestContext.system()


def with_retention(org: Organization, days: int) -> Organization:
    org.settings = {**(org.settings or {}), "auditRetentionDays": days}
    org.save(update_fields=["settings"])
    return org


def at(days_ago: float, org, n: int = 1, event: str = Event.GROUP_UPDATED) -> None:
    with clock.frozen(NOW - dt.timedelta(days=days_ago)):
        for i in range(n):
            record(event, context=CTX, org=org, details={"daysAgo": days_ago, "i": i})


def ages(org) -> list[float]:
    return [e.details.get("daysAgo") for e in chain.chain_events(getattr(org, "pk", org)).order_by("seq")]


def run(*args: str) -> str:
    out = StringIO()
    with clock.frozen(NOW):
        call_command("twig_audit_purge", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def acme(make_org):
    with clock.frozen(NOW - dt.timedelta(days=400)):  # its ORG_CREATED is 400 days old
        return with_retention(make_org("acme", plan="enterprise"), 30)


@pytest.fixture
def new_org(make_org):
    def make(slug: str, **kw):
        with clock.frozen(NOW - dt.timedelta(days=400)):  # its ORG_CREATED is 400 days old
            return make_org(slug, **kw)

    return make


def test_events_older_than_the_orgs_retention_are_deleted_and_the_rest_still_verifies(acme):
    at(100, acme, 3)
    at(31, acme, 2)
    at(29, acme, 2)
    at(1, acme)
    out = run("--org", "acme")
    assert "acme: deleted 6 events older than 30 days" in out  # ORG_CREATED (400 days) + 3 + 2
    assert ages(acme) == [29, 29, 1, None]
    purged = AuditEvent.objects.get(event="AUDIT_PURGED")
    assert purged.org_id == acme.pk and purged.details["count"] == 6 and purged.details["retentionDays"] == 30
    assert purged.details["throughSeq"] == 6 and purged.user_agent == "system"
    head = AuditChainHead.objects.get(chain=chain.chain_key(acme.pk))
    assert head.anchor_seq == 6 and head.purged_at == NOW
    first = chain.chain_events(acme.pk).order_by("seq").first()
    assert (first.seq, first.prev_hash) == (7, head.anchor_hash)
    report = chain.verify_chain(acme.pk)
    assert report.ok and (report.first_seq, report.last_seq) == (7, 10)


def test_tampering_with_the_first_remaining_event_is_still_caught(acme):
    at(100, acme, 2)
    at(1, acme, 2)
    run("--org", "acme")
    first = chain.chain_events(acme.pk).order_by("seq").first()
    AuditEvent.objects.filter(pk=first.pk)._purge()
    broken = chain.verify_chain(acme.pk).broken
    assert broken.problem == "missing" and broken.seq == first.seq + 1


def test_batches_delete_everything_old_in_several_transactions(acme):
    at(60, acme, 11)
    at(2, acme)
    with clock.frozen(NOW):
        results = purge(org=acme, batch_size=3)
    assert [r.deleted for r in results] == [12]  # ORG_CREATED + 11
    assert ages(acme) == [2, None] and chain.verify_chain(acme.pk).ok


def test_a_dry_run_counts_and_deletes_nothing(acme):
    at(100, acme, 4)
    before = AuditEvent.objects.count()
    out = run("--dry-run")
    assert "acme: would delete 5 events" in out
    assert AuditEvent.objects.count() == before and not AuditEvent.objects.filter(event="AUDIT_PURGED").exists()
    assert AuditChainHead.objects.get(chain=chain.chain_key(acme.pk)).anchor_seq == 0


def test_retention_comes_from_the_org_and_is_capped_off_enterprise(new_org, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "AUDIT_RETENTION_DAYS": 60}
    free = new_org("free-co", plan="free")
    long = with_retention(new_org("long-co", plan="enterprise"), 365)
    sneaky = with_retention(new_org("sneaky", plan="team"), 365)  # stored before a downgrade, say
    assert retention_days(free) == 60 and retention_days(long) == 365 and retention_days(sneaky) == 90
    assert retention_days(None) == 60
    for org in (free, long, sneaky):
        at(200, org)
        at(70, org)
    run()
    assert ages(free) == [None]  # AUDIT_PURGED
    assert ages(long) == [200, 70, None]
    assert ages(sneaky) == [70, None]  # 90 days, not 365


def test_one_org_only_and_the_orgless_chain(new_org):
    acme, globex = new_org("acme"), new_org("globex")
    at(100, acme)
    at(100, globex)
    with clock.frozen(NOW - dt.timedelta(days=100)):
        record(Event.LOGIN_FAILURE, context=CTX, email="x@example.test", details={"daysAgo": 100})
    out = run("--org", "globex")
    assert "globex: deleted 2 events" in out and "acme" not in out
    assert ages(acme) == [None, 100] and 100 in ages(None)
    out = run()
    assert "(events without an organization): deleted" in out
    assert 100 not in ages(None)
    assert AuditEvent.objects.filter(event="AUDIT_PURGED", org__isnull=True).count() == 1
    for org_id in (acme.pk, globex.pk, None):
        assert chain.verify_chain(org_id).ok


def test_an_old_event_recorded_after_a_younger_one_waits(acme):
    """Only a prefix of the chain goes: nothing younger than the retention is ever deleted."""
    at(100, acme)
    at(5, acme)
    at(100, acme)  # the clock stepped back
    at(1, acme)
    run("--org", "acme")
    assert ages(acme) == [5, 100, 1, None]
    assert chain.verify_chain(acme.pk).ok


def test_appends_continue_after_a_purge(acme):
    at(100, acme, 2)
    run()
    at(0, acme, 2)
    assert chain.verify_chain(acme.pk).ok


def test_nothing_to_purge_records_nothing(acme):
    at(1, acme)
    with_retention(acme, 3650)
    assert "deleted 0 events" in run("--org", "acme")
    assert not AuditEvent.objects.filter(event="AUDIT_PURGED").exists()


def test_bad_arguments_are_command_errors(db):
    with pytest.raises(CommandError, match="No organization"):
        call_command("twig_audit_purge", "--org", "nope")
    with pytest.raises(CommandError, match="batch-size"):
        call_command("twig_audit_purge", "--batch-size", "0")
