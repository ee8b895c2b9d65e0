"""The audit hash chain: numbering and hashing, the verifier naming the first broken link, the migration that
chains existing rows, the cost of ``record()`` in queries, and concurrent appends to one chain."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.support.concurrency import race
from twig_auth.audit import chain
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditChainHead, AuditEvent
from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.orgs.models import Organization

ROOT = Path(__file__).resolve().parents[2]
CTX = RequestContext(ip="203.0.113.7", user_agent="pytest", session_id="s1")


def raw_sql(sql: str, params: list | None = None) -> None:
    """Tamper with stored rows behind the model's back, as someone with database access could."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def events_of(org) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(org=org).order_by("seq"))


def verify_output(*args: str) -> tuple[str, int]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("twig_audit_verify", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return out.getvalue(), exc.returncode
    return out.getvalue(), 0


# --- numbering and hashing ---------------------------------------------------------------------------------


def test_each_org_has_its_own_chain_numbered_from_one(make_org):
    acme, globex = make_org("acme"), make_org("globex")  # each records ORG_CREATED: seq 1
    for i in range(3):
        record(Event.GROUP_CREATED, context=CTX, org=acme, details={"i": i})
    record(Event.GROUP_CREATED, context=CTX, org=globex)
    assert [e.seq for e in events_of(acme)] == [1, 2, 3, 4]
    assert [e.seq for e in events_of(globex)] == [1, 2]
    first, *rest = events_of(acme)
    assert first.prev_hash == chain.GENESIS
    for before, after in zip([first, *rest], rest, strict=False):
        assert after.prev_hash == before.hash
    head = AuditChainHead.objects.get(chain=f"org:{acme.pk}")
    assert (head.seq, head.hash) == (4, rest[-1].hash)


def test_events_without_an_org_form_their_own_chain(db):
    one = record(Event.LOGIN_FAILURE, context=CTX, email="x@example.test", details={"reason": "unknown_email"})
    two = record(Event.LOGIN_FAILURE, context=CTX, email="y@example.test", details={"reason": "unknown_email"})
    assert (one.seq, two.seq, two.prev_hash) == (1, 2, one.hash)
    assert AuditChainHead.objects.get(chain="orgless").seq == 2


def test_the_hash_is_sha256_of_the_documented_canonical_json(org, owner):
    event = record(Event.ROLE_CHANGED, context=RequestContext(actor=owner.user, ip="2001:db8::0001", user_agent="UA",
                                                              session_id="s", mfa_used=True),
                   org=org, target=owner, details={"to": "admin", "n": 2.0, "nested": {"b": [1, "é"], "a": None}})
    stored = AuditEvent.objects.get(pk=event.pk)
    doc = {
        "prevHash": stored.prev_hash, "timestamp": stored.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event": "ROLE_CHANGED", "org": str(org.pk), "userId": str(owner.user_id), "email": "owner@acme.test",
        "ipAddress": "2001:db8::1", "userAgent": "UA", "mfaUsed": True, "sessionId": "s",
        "target": {"type": "twig_auth.membership", "id": str(owner.pk), "repr": str(owner)},
        "details": {"to": "admin", "n": 2, "nested": {"b": [1, "é"], "a": None}},
    }
    expected = hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert stored.hash == event.hash == expected
    assert stored.as_export()["hash"] == expected and stored.as_export()["seq"] == stored.seq


def test_a_row_written_without_record_is_refused(org):
    with pytest.raises(Exception), transaction.atomic():  # noqa: B017  (IntegrityError: seq is required)
        AuditEvent(timestamp=clock.now(), event="LOGOUT", org=org).save()


# --- verification ------------------------------------------------------------------------------------------


@pytest.fixture
def ten(org):
    for i in range(9):
        record(Event.GROUP_UPDATED, context=CTX, org=org, details={"i": i})
    events = events_of(org)
    assert len(events) == 10
    return events


def test_an_intact_chain_verifies(org, ten):
    report = chain.verify_chain(org.pk)
    assert report.ok and report.checked == 10 and (report.first_seq, report.last_seq) == (1, 10)
    out, code = verify_output()
    assert code == 0 and "acme: OK, 10 events (seq 1–10)" in out and ten[-1].hash in out


def test_a_changed_event_is_named(org, ten):
    victim = ten[4]
    raw_sql("UPDATE twig_audit_events SET email = %s WHERE id = %s", ["mallory@evil.test", victim.pk])
    broken = chain.verify_chain(org.pk).broken
    assert (broken.problem, broken.event_id, broken.seq) == ("changed", victim.pk, 5)
    out, code = verify_output("--org", "acme")
    assert code == 1 and f"BROKEN at event id={victim.pk} seq=5: changed" in out


def test_a_changed_and_rehashed_event_breaks_the_next_link(org, ten):
    victim = ten[4]
    victim.details = {"i": "forged"}
    forged = chain.compute_hash(victim, victim.prev_hash)
    raw_sql("UPDATE twig_audit_events SET details = %s, hash = %s WHERE id = %s",
            [json.dumps(victim.details), forged, victim.pk])
    broken = chain.verify_chain(org.pk).broken
    assert (broken.problem, broken.event_id, broken.seq) == ("changed", ten[5].pk, 6)
    assert f"event id={victim.pk}" in broken.message


def test_a_deleted_event_is_missing(org, ten):
    AuditEvent.objects.filter(pk=ten[3].pk)._purge()
    broken = chain.verify_chain(org.pk).broken
    assert (broken.problem, broken.event_id, broken.seq) == ("missing", ten[4].pk, 5)
    assert "seq 4" in broken.message


def test_deleted_newest_events_are_missing_at_the_end(org, ten):
    AuditEvent.objects.filter(pk__in=[ten[8].pk, ten[9].pk])._purge()
    broken = chain.verify_chain(org.pk).broken
    assert (broken.problem, broken.seq) == ("missing", 9) and "9–10" in broken.message


def test_swapped_positions_are_reordered(org, ten):
    a, b = ten[2], ten[3]  # seq 3 and 4
    raw_sql("UPDATE twig_audit_events SET seq = -1 WHERE id = %s", [a.pk])
    raw_sql("UPDATE twig_audit_events SET seq = 3 WHERE id = %s", [b.pk])
    raw_sql("UPDATE twig_audit_events SET seq = 4 WHERE id = %s", [a.pk])
    broken = chain.verify_chain(org.pk).broken
    assert (broken.problem, broken.event_id, broken.seq) == ("reordered", b.pk, 3)
    assert f"event id={a.pk}" in broken.message


def test_a_renumbered_last_event_is_missing_from_its_place(org, ten):
    raw_sql("UPDATE twig_audit_events SET seq = 50 WHERE id = %s", [ten[9].pk])
    broken = chain.verify_chain(org.pk).broken
    # walking stops at the head's seq (10): the moved last event is no longer where the head says it is
    assert broken.problem == "missing" and broken.seq == 10


def test_a_rewritten_head_is_changed(org, ten):
    AuditChainHead.objects.filter(chain=f"org:{org.pk}").update(hash="f" * 64)
    broken = chain.verify_chain(org.pk).broken
    assert (broken.problem, broken.event_id, broken.seq) == ("changed", ten[9].pk, 10)


def test_other_chains_are_reported_separately(org, ten, make_org):
    other = make_org("globex")
    record(Event.GROUP_CREATED, context=CTX, org=other)
    raw_sql("UPDATE twig_audit_events SET event = 'LOGOUT' WHERE id = %s", [ten[0].pk])
    out, code = verify_output()
    assert code == 1 and "acme: BROKEN" in out and "globex: OK, 2 events" in out


def test_verify_refuses_an_unknown_org(db):
    with pytest.raises(CommandError, match="No organization"):
        call_command("twig_audit_verify", "--org", "nope")


# --- the migration chains existing rows --------------------------------------------------------------------


def test_the_migration_chains_existing_rows_in_id_order(org, make_org):
    from importlib import import_module

    from django.db.migrations.loader import MigrationLoader

    other = make_org("globex")
    for i in range(4):
        record(Event.GROUP_CREATED, context=CTX, org=org if i % 2 else other, details={"i": i})
    record(Event.LOGIN_FAILURE, context=CTX, email="x@example.test")
    # as before the migration: no chain fields, no heads
    raw_sql("UPDATE twig_audit_events SET seq = -id, prev_hash = '', hash = ''")
    AuditChainHead.objects.all().delete()
    migration = import_module("twig_auth.migrations.0014_audit_chain")
    state = MigrationLoader(connection).project_state(("twig_auth", "0014_audit_chain"))

    class Editor:
        connection = connection

    migration.chain_existing_events(state.apps, Editor())
    for org_id in (org.pk, other.pk, None):
        assert chain.verify_chain(org_id).ok
    assert [e.seq for e in events_of(org)] == [1, 2, 3]
    ids = [e.pk for e in events_of(org)]
    assert ids == sorted(ids)
    assert AuditChainHead.objects.get(chain="orgless").seq == 1
    record(Event.GROUP_CREATED, context=CTX, org=org)  # appends continue the migrated chain
    assert events_of(org)[-1].seq == 4 and chain.verify_chain(org.pk).ok


# --- cost of record() --------------------------------------------------------------------------------------


def statements(captured: CaptureQueriesContext) -> list[str]:
    skip = ("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT", "COMMIT")
    return [q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(skip)]


def test_record_costs_three_statements_and_five_for_a_new_chain(org):
    with CaptureQueriesContext(connection) as steady:
        record(Event.GROUP_CREATED, org=org, context=CTX)
    sql = statements(steady)
    assert len(sql) == 3, sql  # lock + advance the head (RETURNING), insert the event, set the head's hash
    assert sql[0].upper().startswith("UPDATE") and "RETURNING" in sql[0].upper()
    assert sql[1].upper().startswith("INSERT") and sql[2].upper().startswith("UPDATE")
    fresh = Organization.objects.create(slug="fresh", name="Fresh")  # no event yet: no head
    with CaptureQueriesContext(connection) as first:
        record(Event.GROUP_CREATED, org=fresh, context=CTX)
    assert len(statements(first)) == 5, statements(first)  # + the head's insert and the advance retried
    with transaction.atomic(), CaptureQueriesContext(connection) as inside:  # in a service's transaction
        record(Event.GROUP_CREATED, org=org, context=CTX)
    assert len(inside.captured_queries) == 3, inside.captured_queries  # no savepoint of its own


# --- concurrency -------------------------------------------------------------------------------------------

THREADS, PER_THREAD = 6, 15


def assert_contiguous(org_id, expected: int) -> None:
    seqs = list(chain.chain_events(org_id).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, expected + 1)), "a gap or a duplicate"
    report = chain.verify_chain(org_id)
    assert report.ok, report.broken
    assert report.checked == expected


@pytest.mark.django_db(transaction=True)
def test_threads_appending_to_one_chain_keep_it_valid(make_org, capsys):
    org = make_org("acme")  # seq 1: ORG_CREATED
    fresh = Organization.objects.create(slug="fresh", name="Fresh")  # its head is created by the race itself

    def append() -> int:
        for i in range(PER_THREAD):
            with transaction.atomic():  # each in the caller's transaction, as services do
                record(Event.GROUP_UPDATED, org=org, context=CTX, details={"i": i})
                record(Event.GROUP_UPDATED, org=fresh, context=CTX, details={"i": i})
        return PER_THREAD

    started = time.perf_counter()
    outcomes = race(THREADS, append)
    elapsed = time.perf_counter() - started
    assert outcomes == [PER_THREAD] * THREADS, outcomes
    assert_contiguous(org.pk, 1 + THREADS * PER_THREAD)
    assert_contiguous(fresh.pk, THREADS * PER_THREAD)
    with capsys.disabled():
        print(f"\n[audit chain] {connection.vendor}: {THREADS} threads appended {2 * THREADS * PER_THREAD} events "
              f"to two chains in {elapsed:.2f}s ({2 * THREADS * PER_THREAD / elapsed:.0f}/s)")


WORKER = r"""
import sys
import django
django.setup()
from django.db import transaction
from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.core.context import RequestContext
import time
org_id, n = int(sys.argv[1]), int(sys.argv[2])
started = time.perf_counter()
for i in range(n):
    with transaction.atomic():
        record(Event.GROUP_UPDATED, org=org_id, context=RequestContext.system(), details={"i": i})
print(f"done {time.perf_counter() - started:.3f}", flush=True)
"""


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = (db.get("USER") or "") + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    where = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    return f"postgres://{auth}{'@' if auth else ''}{where}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_processes_appending_to_one_chain_keep_it_valid(make_org, capsys):
    org = make_org("acme")
    processes, per_process = 4, 40
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "twig_project.settings", "DATABASE_URL": _database_url(),
           "REDIS_URL": ""}
    started = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(org.pk), str(per_process)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(processes)]
    results = [w.communicate(timeout=180) for w in workers]
    elapsed = time.perf_counter() - started
    assert all(w.returncode == 0 and out.startswith("done") for w, (out, _) in zip(workers, results, strict=True)), \
        [err[-2000:] for _, err in results]
    assert_contiguous(org.pk, 1 + processes * per_process)
    loops = [float(out.split()[1]) for out, _ in results]
    with capsys.disabled():
        print(f"\n[audit chain] {connection.vendor}: {processes} processes appended {processes * per_process} events "
              f"to one chain; slowest loop {max(loops):.2f}s ({processes * per_process / max(loops):.0f}/s), "
              f"{elapsed:.2f}s with interpreter start")


# --- admin -------------------------------------------------------------------------------------------------


def test_the_admin_shows_events_and_chain_heads_read_only(org, client, make_user, ten):
    from django.contrib.admin.utils import quote

    staff = make_user("ops@example.test", is_staff=True, is_superuser=True)
    client.force_login(staff, backend="twig_auth.passwords.backends.EmailBackend")
    assert client.get("/admin/twig_auth/auditevent/", {"q": ten[3].hash}).status_code == 200
    heads = client.get("/admin/twig_auth/auditchainhead/")
    assert heads.status_code == 200 and f"org:{org.pk}" in heads.content.decode()
    head = client.get(f"/admin/twig_auth/auditchainhead/{quote(f'org:{org.pk}')}/change/")
    assert head.status_code == 200 and b'name="seq"' not in head.content  # read-only
    assert client.post(f"/admin/twig_auth/auditchainhead/{quote(f'org:{org.pk}')}/delete/").status_code == 403
    assert AuditChainHead.objects.filter(chain=f"org:{org.pk}").exists()
