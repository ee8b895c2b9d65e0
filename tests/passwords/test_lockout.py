"""Lockout: 5 failures in 15 minutes lock for 15 minutes, checked before any hashing, atomic."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.db import connection

from tests.conftest import PASSWORD
from tests.support.logins import login_outcome
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import AccountLocked, InvalidCredentials
from twig_auth.orgs import services as org_services
from twig_auth.passwords import lockout
from twig_auth.passwords.services import authenticate_password, unlock

CTX = RequestContext(ip="203.0.113.7", user_agent="pytest")
T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def attempt(email: str, password: str = "Wrong-Pass-1!") -> str:
    return login_outcome(email, password, CTX)


def test_five_failures_lock_the_account_and_the_sixth_runs_no_hash(make_user, hashes):
    make_user("ann@example.test")
    hashes.count = 0
    with clock.frozen(T0):
        assert [attempt("ann@example.test") for _ in range(5)] == ["invalid"] * 5
        assert hashes.count == 5
        assert attempt("ann@example.test", PASSWORD) == "locked"
        assert hashes.count == 5, "a locked account must answer without hashing"
    assert AuditEvent.objects.filter(event="ACCOUNT_LOCKED", email="ann@example.test").count() == 1
    assert AuditEvent.objects.filter(event="LOGIN_FAILURE").count() == 5, "refusals while locked write nothing"


def test_lock_lasts_fifteen_minutes_then_the_right_password_works(make_user):
    make_user("ann@example.test")
    with clock.frozen(T0) as now:
        for _ in range(5):
            attempt("ann@example.test")
        now.advance(minutes=14, seconds=59)
        assert attempt("ann@example.test", PASSWORD) == "locked"
        now.advance(seconds=2)
        assert attempt("ann@example.test", PASSWORD) == "ok"


def test_a_locked_account_is_refused_with_one_store_read_and_no_sql(make_user, django_assert_num_queries):
    make_user("ann@example.test")
    for _ in range(5):
        attempt("ann@example.test")
    from twig_auth.core.redis import redis_configured

    with django_assert_num_queries(0 if redis_configured() else 1):
        assert attempt("ann@example.test", PASSWORD) == "locked"


def test_locked_error_carries_retry_after_in_seconds(make_user):
    make_user("ann@example.test")
    with clock.frozen(T0) as now:
        for _ in range(5):
            attempt("ann@example.test")
        now.advance(minutes=5)
        with pytest.raises(AccountLocked) as info:
            authenticate_password(email="ann@example.test", password=PASSWORD, context=CTX)
    assert info.value.retry_after == 600
    assert info.value.code == "account_locked"
    assert "10 minutes" in info.value.detail


def test_failures_outside_the_window_do_not_add_up(make_user):
    make_user("ann@example.test")
    with clock.frozen(T0) as now:
        for _ in range(4):
            attempt("ann@example.test")
        now.advance(minutes=15, seconds=1)
        for _ in range(4):
            assert attempt("ann@example.test") == "invalid"
        assert attempt("ann@example.test", PASSWORD) == "ok"


def test_success_resets_the_counter(make_user):
    make_user("ann@example.test")
    with clock.frozen(T0):
        for _ in range(4):
            attempt("ann@example.test")
        assert attempt("ann@example.test", PASSWORD) == "ok"
        for _ in range(4):
            assert attempt("ann@example.test") == "invalid"
        assert attempt("ann@example.test", PASSWORD) == "ok"


def test_unknown_and_known_emails_get_the_same_answer_and_the_same_work(make_user, hashes):
    make_user("ann@example.test")
    hashes.count = 0
    with clock.frozen(T0):
        with pytest.raises(InvalidCredentials) as known:
            authenticate_password(email="ann@example.test", password="Wrong-Pass-1!", context=CTX)
        after_known = hashes.count
        with pytest.raises(InvalidCredentials) as unknown:
            authenticate_password(email="nobody@example.test", password="Wrong-Pass-1!", context=CTX)
    assert known.value.detail == unknown.value.detail == "Invalid email or password."
    assert after_known == 1 and hashes.count == 2, "unknown emails must cost one hash too"
    with clock.frozen(T0):
        results = [attempt("nobody@example.test") for _ in range(5)]
    assert results == ["invalid"] * 4 + ["locked"], "unknown emails lock like known ones"


def test_email_case_and_spaces_count_as_one_identity(make_user):
    make_user("ann@example.test")
    with clock.frozen(T0):
        for spelling in ["ANN@example.test", " ann@Example.test", "ann@EXAMPLE.TEST", "Ann@example.test",
                         "ann@example.test "]:
            attempt(spelling)
        assert attempt("ann@example.test", PASSWORD) == "locked"


def test_org_policy_sets_the_threshold_and_the_strictest_org_wins(make_user, make_org):
    user = make_user("ann@example.test")
    lenient, strict = make_org("lenient"), make_org("strict")
    org_services.add_member(org=lenient, user=user)
    org_services.add_member(org=strict, user=user)
    org_services.update_org_settings(org=strict, patch={"lockout": {"maxAttempts": 3, "lockSeconds": 3600}})
    with clock.frozen(T0) as now:
        assert [attempt("ann@example.test") for _ in range(4)] == ["invalid"] * 3 + ["locked"]
        now.advance(minutes=59)
        assert attempt("ann@example.test", PASSWORD) == "locked"
        now.advance(minutes=2)
        assert attempt("ann@example.test", PASSWORD) == "ok"


def test_inactive_user_gets_invalid_credentials(make_user):
    make_user("ann@example.test", is_active=False)
    assert attempt("ann@example.test", PASSWORD) == "invalid"


@pytest.mark.parametrize("email,password", [("", "x"), ("ann@example.test", ""), ("a" * 300, "x"),
                                            ("ann@example.test", "x" * 5000)])
def test_malformed_input_is_invalid_credentials_without_hashing(make_user, hashes, email, password):
    make_user("ann@example.test")
    hashes.count = 0
    assert attempt(email, password) == "invalid"
    assert hashes.count == 0


def test_unlock_clears_the_lock_and_is_audited(make_user):
    make_user("ann@example.test")
    with clock.frozen(T0):
        for _ in range(5):
            attempt("ann@example.test")
        assert lockout.is_locked("ann@example.test") == 900
        assert unlock(email="Ann@example.test") is True
        assert lockout.is_locked("ann@example.test") == 0
        assert attempt("ann@example.test", PASSWORD) == "ok"
    assert AuditEvent.objects.filter(event="ACCOUNT_UNLOCKED", email="ann@example.test").count() == 1


def test_unlock_command_reports_and_unlocks(make_user, capsys):
    make_user("ann@example.test")
    for _ in range(5):
        attempt("ann@example.test")
    call_command("twig_unlock", "ann@example.test", "--check")
    assert "locked," in capsys.readouterr().out
    call_command("twig_unlock", "ann@example.test")
    assert "ann@example.test: unlocked" in capsys.readouterr().out
    assert attempt("ann@example.test", PASSWORD) == "ok"


@pytest.mark.django_db(transaction=True)
def test_fifty_parallel_wrong_logins_run_exactly_five_hashes(make_user, hashes):
    make_user("ann@example.test")
    hashes.count = 0

    def one(_: int) -> str:
        try:
            return attempt("ann@example.test")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(50)))
    assert hashes.count == 5, f"overshoot: {hashes.count - 5} extra password checks ran"
    assert results.count("invalid") == 5 and results.count("locked") == 45
    assert attempt("ann@example.test", PASSWORD) == "locked"
