"""Usage counting: nothing written on the request path; batched flushes add up per day, endpoint and status;
``API_KEY_USED`` is audited once per key and day."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from twig_auth.apikeys.models import ApiKey, ApiKeyUsage
from twig_auth.apikeys.usage import buffer
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock

from .conftest import bearer, sql_of

WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@pytest.fixture(autouse=True)
def _settings(settings, fast_bcrypt):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_USAGE_FLUSH_SECONDS": 3600}
    buffer.take()  # start from an empty buffer and a fresh flush timer


def _rows(key: ApiKey) -> dict[tuple[str, str, int], int]:
    return {(u.day.isoformat(), u.endpoint, u.status): u.count for u in ApiKeyUsage.objects.filter(key=key)}


def test_requests_write_nothing_and_flush_writes_per_day_endpoint_and_status(client, owner, issue,
                                                                            django_assert_max_num_queries):
    key, plaintext = issue(owner, ["read"])
    assert client.get("/api/agents", **bearer(plaintext)).status_code == 200  # cold: warms the cache
    with django_assert_max_num_queries(20) as captured:
        for _ in range(3):
            assert client.get("/api/agents", REMOTE_ADDR="192.0.2.1", **bearer(plaintext)).status_code == 200
        assert client.get("/api/data-sources", REMOTE_ADDR="192.0.2.1", **bearer(plaintext)).status_code == 200
        assert client.post("/api/agents", {"name": "x"}, content_type="application/json", REMOTE_ADDR="192.0.2.2",
                           **bearer(plaintext)).status_code == 403
    assert not [sql for sql in sql_of(captured) if WRITES.match(sql)], sql_of(captured)
    assert not ApiKeyUsage.objects.exists()
    key.refresh_from_db()
    assert key.last_used_at is None

    assert buffer.flush() == 3
    today = clock.now().date().isoformat()
    assert _rows(key) == {(today, "GET /api/agents", 200): 4, (today, "GET /api/data-sources", 200): 1,
                          (today, "POST /api/agents", 403): 1}
    key.refresh_from_db()
    assert key.last_used_ip == "192.0.2.2" and key.last_used_at is not None
    assert buffer.flush() == 0  # nothing left


def test_two_flushes_add_up_and_audit_once_per_key_and_day(client, owner, issue, totp_device):
    totp_device(owner.user)  # years from now the owner's MFA grace period is long over: enrolled, they still work
    key, plaintext = issue(owner, ["read"])
    other, other_plain = issue(owner, ["read"])
    start = dt.datetime(2031, 3, 4, 10, 0, tzinfo=dt.UTC)
    with clock.frozen(start) as frozen:
        for _ in range(2):
            client.get("/api/agents", **bearer(plaintext))
        client.get("/api/agents", **bearer(other_plain))
        buffer.flush()
        for _ in range(3):
            client.get("/api/agents", **bearer(plaintext))
        buffer.flush()
        assert _rows(key) == {("2031-03-04", "GET /api/agents", 200): 5}
        assert _rows(other) == {("2031-03-04", "GET /api/agents", 200): 1}
        used = AuditEvent.objects.filter(event="API_KEY_USED")
        assert used.filter(target_id=key.pk).count() == 1
        assert used.filter(target_id=other.pk).count() == 1
        assert plaintext not in str(used.get(target_id=key.pk).details)

        frozen.advance(days=1)
        client.get("/api/agents", **bearer(plaintext))
        buffer.flush()
        assert _rows(key) == {("2031-03-04", "GET /api/agents", 200): 5, ("2031-03-05", "GET /api/agents", 200): 1}
        assert used.filter(target_id=key.pk).count() == 2
        assert used.filter(target_id=other.pk).count() == 1


def test_flush_adds_to_rows_written_by_another_process(owner, issue):
    key, _ = issue(owner, ["read"])
    today = clock.now().date()
    ApiKeyUsage.objects.create(key=key, day=today, endpoint="GET /api/agents", status=200, count=7)
    buffer.add(key.pk, "GET /api/agents", 200, "192.0.2.9")
    buffer.add(key.pk, "GET /api/agents", 200, "192.0.2.9")
    buffer.flush()
    assert _rows(key) == {(today.isoformat(), "GET /api/agents", 200): 9}


def test_usage_of_a_deleted_key_is_dropped_not_an_error(owner, issue):
    key, _ = issue(owner, ["read"])
    buffer.add(key.pk, "GET /api/agents", 200, None)
    buffer.add("key_gone", "GET /api/agents", 200, None)
    assert buffer.flush() >= 1
    assert ApiKeyUsage.objects.filter(key=key).get().count == 1
    assert not ApiKeyUsage.objects.filter(key_id="key_gone").exists()


def test_flush_happens_on_a_later_request_once_due(client, owner, issue, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_USAGE_FLUSH_SECONDS": 1}
    key, plaintext = issue(owner, ["read"])
    buffer._flushed_at -= 5  # the last flush was 5 s ago
    assert client.get("/api/agents", **bearer(plaintext)).status_code == 200
    assert _rows(key) == {(clock.now().date().isoformat(), "GET /api/agents", 200): 1}
