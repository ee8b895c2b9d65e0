"""Recovery codes: issued once at first enrollment, stored as keyed digests, single use, replaced, removed."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from tests.conftest import oathtool
from tests.support.concurrency import race
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import MfaRequired, MfaThrottled, PermissionDenied
from twig_auth.mfa import codes, recovery, services, totp
from twig_auth.mfa.devices import TOTP

CTX = RequestContext(ip="192.0.2.77", user_agent="pytest")
T0 = dt.datetime(2026, 11, 23, 12, 0, 10, tzinfo=dt.UTC)
CODE_SHAPE = re.compile(r"[2-9a-hjkmnp-z]{5}-[2-9a-hjkmnp-z]{5}")


def enroll_app(user) -> tuple[object, list[str] | None]:
    """Enroll an authenticator app the way the page does, with a code from oathtool."""
    device = services.start_totp(user=user)
    code = oathtool(totp.secret_b32(device), at=clock.now().timestamp())
    return device, services.confirm_totp(user=user, device_id=device.pk, code=code, context=CTX)


def outcome(user, code: str) -> str:
    try:
        return services.verify(user=user, code=code, context=CTX)
    except (MfaRequired, MfaThrottled) as exc:
        return exc.code


@pytest.fixture
def enrolled(make_user):
    user = make_user()
    with clock.frozen(T0):
        device, issued = enroll_app(user)
    return user, device, issued


def test_first_enrollment_issues_the_configured_number_of_codes(enrolled):
    user, _, issued = enrolled
    assert len(issued) == 10 == len(set(issued))
    assert all(CODE_SHAPE.fullmatch(c) for c in issued), issued
    assert recovery.remaining(user) == 10
    assert StaticDevice.objects.filter(user=user, confirmed=True).count() == 1


def test_the_count_follows_the_setting(make_user, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_RECOVERY_CODE_COUNT": 4}
    user = make_user()
    with clock.frozen(T0):
        _, issued = enroll_app(user)
    assert len(issued) == 4 and recovery.remaining(user) == 4


def test_codes_are_stored_as_16_hex_digests_never_in_clear(enrolled):
    user, _, issued = enrolled
    stored = list(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert len(stored) == 10
    assert all(re.fullmatch(r"[0-9a-f]{16}", t) for t in stored), stored
    assert sorted(stored) == sorted(codes.recovery_digest(c) for c in issued)
    for code in issued:
        raw = code.replace("-", "")
        assert not [t for t in stored if code in t or raw in t or t in (code, raw)]
    for event in AuditEvent.objects.all():
        assert not any(code in str(event.details) for code in issued)


def test_each_code_works_once(enrolled):
    user, _, issued = enrolled
    with clock.frozen(T0 + dt.timedelta(minutes=5)):
        for left, code in zip(range(9, -1, -1), issued, strict=True):
            assert outcome(user, code) == "recovery"
            assert recovery.remaining(user) == left
            assert outcome(user, code) == "mfa_required"  # (the next right code clears this failure)
    used = AuditEvent.objects.filter(event="MFA_RECOVERY_CODE_USED").order_by("pk")
    assert [e.details["remaining"] for e in used] == list(range(9, -1, -1))
    assert all(e.details["purpose"] == "login" and e.mfa_used and e.user_id == user.pk for e in used)
    assert StaticDevice.objects.get(user=user).last_used_at == T0 + dt.timedelta(minutes=5)


def test_codes_are_accepted_as_people_type_them(enrolled):
    user, _, issued = enrolled
    assert outcome(user, issued[0].upper()) == "recovery"
    assert outcome(user, issued[1].replace("-", " ")) == "recovery"
    assert outcome(user, f"  {issued[2].replace('-', '')}  ") == "recovery"


def test_another_users_code_does_not_work(enrolled, make_user):
    _, _, issued = enrolled
    bob = make_user()
    with clock.frozen(T0):
        _, bob_codes = enroll_app(bob)
    assert outcome(bob, issued[0]) == "mfa_required"
    assert outcome(bob, bob_codes[0]) == "recovery"


def test_regenerating_replaces_every_old_code(enrolled):
    user, _, old = enrolled
    assert outcome(user, old[0]) == "recovery"
    fresh = services.regenerate_recovery_codes(user=user, context=CTX)
    assert len(fresh) == 10 and not set(fresh) & set(old)
    assert recovery.remaining(user) == 10
    assert StaticDevice.objects.filter(user=user).count() == 1
    assert [outcome(user, c) for c in old[1:5]] == ["mfa_required"] * 4
    assert outcome(user, fresh[0]) == "recovery"
    event = AuditEvent.objects.get(event="MFA_RECOVERY_CODES_REGENERATED")
    assert event.details == {"count": 10} and event.user_id == user.pk


def test_regenerating_needs_a_real_second_factor(make_user):
    user = make_user()
    with pytest.raises(PermissionDenied) as caught:
        services.regenerate_recovery_codes(user=user, context=CTX)
    assert caught.value.code == "permission_denied"
    assert not StaticDevice.objects.filter(user=user).exists()


def test_a_second_device_does_not_reissue_codes_while_some_remain(enrolled):
    user, _, issued = enrolled
    with clock.frozen(T0 + dt.timedelta(minutes=1)):
        _, again = enroll_app(user)
    assert again is None
    assert outcome(user, issued[0]) == "recovery"
    assert AuditEvent.objects.filter(event="MFA_ENROLLED").order_by("-pk")[0].details["recoveryCodesIssued"] is False


def test_a_new_device_reissues_codes_when_all_were_used(make_user, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_RECOVERY_CODE_COUNT": 4}
    user = make_user()
    with clock.frozen(T0) as now:
        _, issued = enroll_app(user)
        assert [outcome(user, c) for c in issued] == ["recovery"] * 4
        now.advance(minutes=1)
        _, again = enroll_app(user)
    assert again is not None and len(again) == 4 and recovery.remaining(user) == 4


def test_removing_one_of_two_devices_keeps_the_codes_and_the_last_deletes_them(enrolled):
    user, first, issued = enrolled
    with clock.frozen(T0 + dt.timedelta(minutes=1)):
        second, _ = enroll_app(user)
    services.remove_device(user=user, kind=TOTP, device_id=first.pk, context=CTX)
    assert recovery.remaining(user) == 10
    services.remove_device(user=user, kind=TOTP, device_id=second.pk, context=CTX)
    assert not StaticDevice.objects.filter(user=user).exists()
    assert not StaticToken.objects.filter(device__user=user).exists()
    assert outcome(user, issued[0]) == "mfa_required"
    assert AuditEvent.objects.filter(event="MFA_REMOVED", user=user).count() == 2


def test_recovery_codes_alone_do_not_count_as_mfa(make_user):
    from twig_auth.mfa.devices import has_mfa

    user = make_user()
    recovery.generate(user)
    assert not has_mfa(user)


@pytest.mark.django_db(transaction=True)
def test_concurrent_use_of_one_code_lets_exactly_one_through(enrolled, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_MAX_FAILURES": 100}  # every thread checks its code
    user, _, issued = enrolled
    threads_n = 12
    results = race(threads_n, lambda: outcome(user, issued[3]))
    assert sorted(results) == ["mfa_required"] * 11 + ["recovery"], results
    assert recovery.remaining(user) == 9
    assert AuditEvent.objects.filter(event="MFA_RECOVERY_CODE_USED").count() == 1
