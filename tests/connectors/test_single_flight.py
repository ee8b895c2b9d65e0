"""Many callers need a refresh at the same moment: the provider sees exactly one refresh grant, and every caller
gets the new access token. The provider rotates refresh tokens (ROTATE_RT=1), so a second refresh with the old
refresh token would be refused (and would revoke the whole grant): single flight is not optional there.

Threads on both backends; threads and separate processes together (each its own interpreter and database
connection) against the same database file or server."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from twig_auth.audit.models import AuditEvent
from twig_auth.connectors.models import OAuthToken
from twig_auth.connectors.tokens import access_token_for
from twig_auth.core import clock

from .conftest import connect
from .test_refresh import HOUR

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
THREADS = 8
PROCESSES = 4


def expire(token: OAuthToken) -> None:
    OAuthToken.objects.filter(pk=token.pk).update(expires_at=clock.now() - HOUR)


def in_threads(count: int, job: Any, start: threading.Barrier | None = None) -> tuple[list[threading.Thread], list]:
    """Start ``count`` threads running ``job()`` together; return them and the list their results land in."""
    barrier = start or threading.Barrier(count)
    results: list[tuple[str, str]] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(("TOKEN", hashlib.sha256(job().encode()).hexdigest()))
        except Exception as exc:  # noqa: BLE001
            results.append(("ERROR", repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def assert_one_refresh(op: Any, stored: OAuthToken, before: tuple[int, int], tokens: list[str]) -> None:
    assert len(set(tokens)) == 1, tokens
    assert op.grants("refresh_token") == before[0] + 1, "the provider saw more or less than one refresh"
    assert op.refused("refresh_token") == before[1]
    row = OAuthToken.objects.get(pk=stored.pk)
    assert tokens[0] == hashlib.sha256(row.access_token.encode()).hexdigest()
    assert row.version == stored.version + 1 and row.status == "connected" and row.refresh_lease_id == ""
    assert row.refresh_token != stored.refresh_token and op.active(row.refresh_token)
    assert AuditEvent.objects.filter(event="CONNECTOR_REFRESHED").count() == 1


@pytest.fixture
def expired(web: Any, org: Any, rotating_op: Any, use_op: Any, make_source: Any) -> tuple[Any, OAuthToken]:
    use_op(rotating_op)
    source = make_source(org)
    stored = connect(web, source)
    expire(stored)
    return source, stored


def test_concurrent_threads_refresh_once(org, rotating_op, expired):
    source, stored = expired
    before = (rotating_op.grants("refresh_token"), rotating_op.refused("refresh_token"))
    threads, results = in_threads(THREADS, lambda: access_token_for(org=org, provider="google_drive",
                                                                    subject=source.pk))
    for thread in threads:
        thread.join(timeout=60)
    assert [kind for kind, _ in results] == ["TOKEN"] * THREADS, results
    assert_one_refresh(rotating_op, stored, before, [value for _, value in results])


def _database_env() -> dict[str, str]:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"SQLITE_PATH": str(db["NAME"]), "DATABASE_URL": ""}
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return {"DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"}


def test_concurrent_processes_and_threads_refresh_once(org, rotating_op, expired):
    source, stored = expired
    before = (rotating_op.grants("refresh_token"), rotating_op.refused("refresh_token"))
    job = {"twig_auth": django_settings.TWIG_AUTH, "org": org.pk, "provider": "google_drive", "subject": source.pk}
    env = {**os.environ, **_database_env(), "TWIG_WORKER": json.dumps(job)}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.connectors.refresh_worker"], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for _ in range(PROCESSES)]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "READY"
        go = threading.Barrier(4 + 1)
        threads, results = in_threads(4, lambda: access_token_for(org=org, provider="google_drive",
                                                                  subject=source.pk), start=go)
        for worker in workers:  # the processes and the threads start together
            worker.stdin.write("GO\n")
            worker.stdin.flush()
        go.wait(timeout=30)
        outputs = [worker.communicate(timeout=60)[0].strip() for worker in workers]
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    answers = [tuple(line.split(" ", 1)) for line in outputs] + results
    assert [kind for kind, _ in answers] == ["TOKEN"] * (PROCESSES + 4), answers
    assert_one_refresh(rotating_op, stored, before, [value for _, value in answers])


def test_without_the_lease_the_provider_would_revoke_everything(org, rotating_op, expired):
    """The control experiment: two refreshes with the same rotated-away refresh token make the provider refuse
    the second and revoke the grant, which is what single flight prevents."""
    _, stored = expired
    first = rotating_op.refresh(stored.refresh_token)
    second = rotating_op.refresh(stored.refresh_token)
    assert first.status_code == 200 and second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert not rotating_op.active(first.json()["refresh_token"])
