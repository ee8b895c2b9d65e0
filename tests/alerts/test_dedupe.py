"""Deduplication holds across threads and OS processes, on SQLite and PostgreSQL: of many simultaneous claims of
one (org, kind, subject), exactly one wins, both for a first alert (INSERT race on the unique key) and once the
window has passed (conditional UPDATE race)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.apikeys.test_revocation_processes import _database_url
from tests.support.concurrency import race
from twig_auth.alerts.models import SecurityAlert
from twig_auth.alerts.services import claim
from twig_auth.core import clock

ROOT = Path(__file__).resolve().parents[2]

WORKER = r"""
import datetime as dt, json, sys
import django
django.setup()
from twig_auth.alerts.services import claim

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    org_id, kind, subject, at = json.loads(line)
    won = claim(org_id, kind, subject, now=dt.datetime.fromisoformat(at))
    print(json.dumps({"won": won}), flush=True)
"""


@pytest.mark.django_db(transaction=True)
def test_exactly_one_thread_wins_a_claim_then_exactly_one_after_the_window(org):
    now = clock.now()
    first = race(6, lambda: claim(org.pk, "account_locked", "bob@acme.test", now=now))
    assert sorted(first, key=str) == [False] * 5 + [True], first
    later = now + dt.timedelta(hours=2)
    second = race(6, lambda: claim(org.pk, "account_locked", "bob@acme.test", now=later))
    assert sorted(second, key=str) == [False] * 5 + [True], second
    row = SecurityAlert.objects.get()
    assert (row.sent_count, row.suppressed, row.last_sent_at) == (2, 5, later)


@pytest.mark.django_db(transaction=True)
def test_operator_alerts_without_an_org_dedupe_too(db):
    now = clock.now()
    assert race(4, lambda: claim(None, "login_failures_ip", "198.51.100.66", now=now)).count(True) == 1
    assert claim(None, "login_failures_ip", "198.51.100.67", now=now) is True  # another subject
    assert claim(None, "ip_blocked", "198.51.100.66", now=now) is True  # another kind


@pytest.mark.django_db(transaction=True)
def test_exactly_one_process_wins(org):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "twig_project.settings", "DATABASE_URL": _database_url()}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    try:
        for w in workers:
            line = w.stdout.readline()
            assert json.loads(line or "{}") == {"ready": True}, w.stderr.read()
        connection.close()  # SQLite: leave the writers the file
        for at in (clock.now(), clock.now() + dt.timedelta(days=1)):
            message = json.dumps([org.pk, "token_reused", "bob@acme.test", at.isoformat()]) + "\n"
            for w in workers:  # all asked at once, then all answers read
                w.stdin.write(message)
                w.stdin.flush()
            answers = [json.loads(w.stdout.readline()) for w in workers]
            assert sorted(a["won"] for a in answers) == [False, False, True], answers
    finally:
        for w in workers:
            w.stdin.close()
            w.wait(timeout=30)
    assert SecurityAlert.objects.get().sent_count == 2
