"""services.verify: one entry for every second factor, a per-account budget of wrong codes, audited failures."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from tests.conftest import PASSWORD, oathtool
from twig_auth import signals
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import MfaRequired, MfaThrottled
from twig_auth.mfa import attempts, recovery, services
from twig_auth.passwords.services import authenticate_password

CTX = RequestContext(ip="198.51.100.4", user_agent="pytest-agent")
T0 = dt.datetime(2026, 11, 23, 12, 0, 10, tzinfo=dt.UTC)


def now_code(secret: str) -> str:
    return oathtool(secret, at=clock.now().timestamp())


def wrong(secret: str) -> str:
    """A code that matches no step in the drift window."""
    at = clock.now().timestamp()
    near = {oathtool(secret, at=at + 30 * k) for k in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(123_456, 1_000_000, 77_777)) if c not in near)


def outcome(user, code: str) -> str:
    try:
        return services.verify(user=user, code=code, context=CTX)
    except (MfaRequired, MfaThrottled) as exc:
        return exc.code


@pytest.fixture
def enrolled(make_user, totp_device):
    user = make_user("ann@example.test")
    _, secret = totp_device(user)
    return user, secret


@pytest.mark.parametrize("code", ["", "   ", None])
def test_a_missing_code_is_mfa_required_and_costs_nothing(enrolled, code):
    user, _ = enrolled
    with pytest.raises(MfaRequired) as caught:
        services.verify(user=user, code=code, context=CTX)
    assert caught.value.code == "mfa_required"
    assert not AuditEvent.objects.filter(event="MFA_FAILURE").exists()


@pytest.mark.parametrize("code", ["000000x", "12345", "1234567", "abcdefghijkl", "١٢٣٤٥٦", "\x00" * 6, "9" * 5000,
                                  "' OR 1=1 --", "<script>"])
def test_hostile_codes_are_wrong_codes_not_errors(enrolled, code):
    user, _ = enrolled
    with clock.frozen(T0), pytest.raises(MfaRequired) as caught:
        services.verify(user=user, code=code, context=CTX)
    assert caught.value.code == "mfa_required"
    assert AuditEvent.objects.filter(event="MFA_FAILURE").count() == 1


def test_a_wrong_code_is_audited_without_the_code(enrolled):
    user, secret = enrolled
    with clock.frozen(T0):
        bad = wrong(secret)
        with pytest.raises(MfaRequired) as caught:
            services.verify(user=user, code=bad, context=CTX, purpose="step_up")
    assert caught.value.code == "mfa_required" and bad not in caught.value.detail
    event = AuditEvent.objects.get(event="MFA_FAILURE")
    assert event.user_id == user.pk and event.email == "ann@example.test"
    assert (event.ip_address, event.user_agent) == ("198.51.100.4", "pytest-agent")
    assert event.details == {"purpose": "step_up", "paused": False}
    assert event.timestamp == T0


def test_verify_reports_the_method_and_signals_it(enrolled, make_user):
    user, secret = enrolled
    seen = []

    def on_verified(sender, user, method, purpose, **kwargs):
        seen.append((user.pk, method, purpose))

    signals.mfa_verified.connect(on_verified)
    try:
        with clock.frozen(T0):
            codes = recovery.generate(user)
            assert services.verify(user=user, code=now_code(secret), context=CTX, purpose="login") == "totp"
            assert services.verify(user=user, code=codes[0], context=CTX, purpose="step_up") == "recovery"
    finally:
        signals.mfa_verified.disconnect(on_verified)
    assert seen == [(user.pk, "totp", "login"), (user.pk, "recovery", "step_up")]


def test_the_fifth_wrong_code_pauses_verification_with_retry_after(enrolled):
    user, secret = enrolled
    with clock.frozen(T0) as now:
        bad = wrong(secret)
        assert [outcome(user, bad) for _ in range(5)] == ["mfa_required"] * 5
        assert [e.details["paused"] for e in AuditEvent.objects.filter(event="MFA_FAILURE").order_by("pk")] \
            == [False, False, False, False, True]
        now.advance(seconds=60)
        with pytest.raises(MfaThrottled) as caught:
            services.verify(user=user, code=now_code(secret), context=CTX)  # even the right code waits
        assert caught.value.code == "rate_limit_exceeded"
        assert caught.value.retry_after == 900 - 60
        assert AuditEvent.objects.filter(event="MFA_FAILURE").count() == 5  # a refused attempt checks nothing
        now.advance(seconds=900 - 60)
        assert outcome(user, now_code(secret)) == "totp"


def test_the_failure_budget_follows_the_settings(enrolled, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_MAX_FAILURES": 2, "MFA_LOCK_SECONDS": 120}
    user, secret = enrolled
    with clock.frozen(T0):
        bad = wrong(secret)
        assert [outcome(user, bad) for _ in range(3)] == ["mfa_required", "mfa_required", "rate_limit_exceeded"]
        with pytest.raises(MfaThrottled) as caught:
            services.verify(user=user, code=bad, context=CTX)
        assert caught.value.retry_after == 120


def test_a_right_code_clears_the_count(enrolled):
    user, secret = enrolled
    with clock.frozen(T0) as now:
        bad = wrong(secret)
        assert [outcome(user, bad) for _ in range(4)] == ["mfa_required"] * 4
        assert outcome(user, now_code(secret)) == "totp"
        now.advance(seconds=30)
        bad = wrong(secret)
        assert [outcome(user, bad) for _ in range(4)] == ["mfa_required"] * 4  # a fresh budget of five
        assert outcome(user, now_code(secret)) == "totp"


def test_wrong_codes_spread_beyond_the_window_do_not_add_up(enrolled):
    user, secret = enrolled
    with clock.frozen(T0) as now:
        for _ in range(3):
            assert outcome(user, wrong(secret)) == "mfa_required"
        now.advance(seconds=901)
        for _ in range(4):
            assert outcome(user, wrong(secret)) == "mfa_required"


def test_the_budget_is_per_account(enrolled, make_user, totp_device):
    ann, secret = enrolled
    bob = make_user()
    _, bob_secret = totp_device(bob)
    with clock.frozen(T0):
        for _ in range(6):
            outcome(ann, wrong(secret))
        assert outcome(ann, now_code(secret)) == "rate_limit_exceeded"
        assert outcome(bob, now_code(bob_secret)) == "totp"


def test_wrong_codes_do_not_lock_the_password_and_a_right_password_does_not_reset_them(enrolled):
    user, secret = enrolled
    with clock.frozen(T0):
        for _ in range(5):
            outcome(user, wrong(secret))
        assert authenticate_password(email=user.email, password=PASSWORD, context=CTX).pk == user.pk
        assert outcome(user, now_code(secret)) == "rate_limit_exceeded"


def test_an_admin_reset_clears_the_budget(enrolled):
    user, secret = enrolled
    with clock.frozen(T0):
        for _ in range(5):
            outcome(user, wrong(secret))
        attempts.reset(user)
        assert outcome(user, now_code(secret)) == "totp"


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_guesses_check_at_most_the_budget(enrolled, monkeypatch):
    user, secret = enrolled
    checked = []
    lock = threading.Lock()
    real_match = services._match

    def counted(u, code):
        with lock:
            checked.append(code)
        return real_match(u, code)

    monkeypatch.setattr(services, "_match", counted)
    threads_n = 24
    barrier = threading.Barrier(threads_n)
    results: list[str] = []

    def guess(i: int) -> None:
        try:
            barrier.wait()
            results.append(outcome(user, f"{(i * 7919) % 1_000_000:06d}"))
        finally:
            connection.close()

    with clock.frozen(T0):
        right = now_code(secret)
        near = {oathtool(secret, at=T0.timestamp() + 30 * k) for k in (-1, 0, 1)}
        assert not near & {f"{(i * 7919) % 1_000_000:06d}" for i in range(threads_n)}
        threads = [threading.Thread(target=guess, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(checked) == 5, f"{len(checked)} codes were checked against a budget of 5"
        assert sorted(results) == ["mfa_required"] * 5 + ["rate_limit_exceeded"] * 19
        assert outcome(user, right) == "rate_limit_exceeded"
    assert AuditEvent.objects.filter(event="MFA_FAILURE").count() == 5
