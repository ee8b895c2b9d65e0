"""Authenticator apps (TOTP) end to end with the real ``oathtool``: enrollment, single use, drift, races."""

from __future__ import annotations

import base64
import datetime as dt
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import oathtool
from tests.support.concurrency import race
from twig_auth import signals
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, MfaRequired, NotFound
from twig_auth.mfa import recovery, services, totp

CTX = RequestContext(ip="203.0.113.9", user_agent="pytest")
T0 = dt.datetime(2026, 11, 23, 12, 0, 10, tzinfo=dt.UTC)  # 10 s into a 30 s step


def code_at(secret: str, moment: dt.datetime) -> str:
    return oathtool(secret, at=moment.timestamp())


def verify(user, code: str) -> str:
    try:
        return services.verify(user=user, code=code, context=CTX)
    except MfaRequired as exc:
        return exc.code


# --- enrollment ----------------------------------------------------------------------------------------


def test_provisioning_uri_carries_what_authenticator_apps_need(make_user):
    user = make_user("ann+work@example.test")
    device = services.start_totp(user=user)
    uri = totp.provisioning_uri(device, user.email)
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Twig:ann+work@example.test"
    query = {k: v[0] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
    assert query == {"secret": totp.secret_b32(device), "issuer": "Twig", "algorithm": "SHA1",
                     "digits": "6", "period": "30"}
    secret = query["secret"]
    assert "=" not in secret and len(secret) == 32  # 160 bits, unpadded base32
    assert base64.b32decode(secret) == device.bin_key
    with clock.frozen(T0):  # the secret as scanned from the URI is the one the server checks
        assert services.confirm_totp(user=user, device_id=device.pk, code=code_at(secret, T0), context=CTX)


def test_issuer_setting_is_used_without_colons(make_user, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_TOTP_ISSUER": "Acme: Twig"}
    user = make_user()
    uri = totp.provisioning_uri(services.start_totp(user=user), user.email)
    assert unquote(urlsplit(uri).path) == f"/Acme Twig:{user.email}"
    assert parse_qs(urlsplit(uri).query)["issuer"] == ["Acme Twig"]


def test_qr_code_is_an_inline_svg_document(make_user):
    user = make_user()
    device = services.start_totp(user=user)
    svg = totp.qr_svg(totp.provisioning_uri(device, user.email))
    assert svg.startswith("<svg") and "<?xml" not in svg
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    paths = [el for el in root.iter() if el.tag.endswith("path")]
    assert paths and len(paths[0].get("d", "")) > 500  # the modules of a real QR code
    assert totp.secret_b32(device) not in svg  # encoded as modules, not text


def test_enrollment_with_an_oathtool_code_confirms_the_device_and_issues_recovery_codes(make_user):
    user = make_user()
    received = []

    def on_enrolled(sender, user, device, context, **kwargs):
        received.append((user.pk, device.pk))

    signals.mfa_enrolled.connect(on_enrolled)
    try:
        with clock.frozen(T0):
            device = services.start_totp(user=user)
            assert not device.confirmed
            issued = services.confirm_totp(user=user, device_id=str(device.pk), context=CTX, name="Pixel",
                                           code=code_at(totp.secret_b32(device), T0))
    finally:
        signals.mfa_enrolled.disconnect(on_enrolled)
    device.refresh_from_db()
    assert device.confirmed and device.name == "Pixel"
    assert device.last_t == int(T0.timestamp()) // 30
    assert len(issued) == 10 and recovery.remaining(user) == 10
    event = AuditEvent.objects.get(event="MFA_ENROLLED")
    assert event.user_id == user.pk and event.ip_address == "203.0.113.9"
    assert event.details == {"method": "totp", "recoveryCodesIssued": True}
    assert event.target_id == str(device.pk)
    assert received == [(user.pk, device.pk)]


def test_the_enrollment_code_cannot_be_used_again_to_sign_in(make_user):
    user = make_user()
    with clock.frozen(T0):
        device = services.start_totp(user=user)
        code = code_at(totp.secret_b32(device), T0)
        services.confirm_totp(user=user, device_id=device.pk, code=code, context=CTX)
        assert verify(user, code) == "mfa_required"


def test_a_wrong_enrollment_code_names_the_field_and_leaves_the_device_unconfirmed(make_user):
    user = make_user()
    with clock.frozen(T0):
        device = services.start_totp(user=user)
        right = code_at(totp.secret_b32(device), T0)
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        with pytest.raises(InvalidInput) as caught:
            services.confirm_totp(user=user, device_id=device.pk, code=wrong, context=CTX)
    assert caught.value.code == "invalid" and list(caught.value.errors) == ["code"]
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed
    event = AuditEvent.objects.get(event="MFA_FAILURE")
    assert event.details == {"purpose": "enroll", "paused": False}
    assert wrong not in str(event.details) and not AuditEvent.objects.filter(event="MFA_ENROLLED").exists()


def test_starting_again_replaces_the_unconfirmed_device(make_user):
    user = make_user()
    first = services.start_totp(user=user)
    second = services.start_totp(user=user)
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True)) == [second.pk]
    assert first.key != second.key
    with pytest.raises(NotFound):
        services.confirm_totp(user=user, device_id=first.pk, code="123456", context=CTX)


@pytest.mark.parametrize("device_id", ["999999", "-1", "1; DROP TABLE otp_totp_totpdevice", "１", "9" * 40, None])
def test_confirming_an_unknown_or_hostile_device_id_is_not_found(make_user, device_id):
    user = make_user()
    services.start_totp(user=user)
    with pytest.raises(NotFound) as caught:
        services.confirm_totp(user=user, device_id=device_id, code="123456", context=CTX)
    assert caught.value.code == "not_found"


def test_nobody_confirms_another_users_device(make_user):
    ann, bob = make_user(), make_user()
    with clock.frozen(T0):
        device = services.start_totp(user=ann)
        with pytest.raises(NotFound):
            services.confirm_totp(user=bob, device_id=device.pk, context=CTX,
                                  code=code_at(totp.secret_b32(device), T0))
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed


# --- verification: single use ----------------------------------------------------------------------------


def test_an_oathtool_code_is_accepted_once(make_user, totp_device):
    user = make_user()
    device, secret = totp_device(user)
    with clock.frozen(T0):
        code = code_at(secret, T0)
        assert verify(user, code) == "totp"
        assert verify(user, code) == "mfa_required"  # replay, same step
    device.refresh_from_db()
    assert device.last_t == int(T0.timestamp()) // 30 and device.last_used_at == T0
    assert AuditEvent.objects.filter(event="MFA_FAILURE").count() == 1


def test_an_older_code_after_a_newer_one_is_refused(make_user, totp_device):
    user = make_user()
    _, secret = totp_device(user)
    older = code_at(secret, T0)
    with clock.frozen(T0 + dt.timedelta(seconds=30)) as now:
        assert verify(user, code_at(secret, now.current)) == "totp"
        assert verify(user, older) == "mfa_required"  # within the drift window, but below the floor


def test_a_code_from_the_next_step_consumes_the_current_one(make_user, totp_device):
    user = make_user()
    _, secret = totp_device(user)
    with clock.frozen(T0):
        assert verify(user, code_at(secret, T0 + dt.timedelta(seconds=30))) == "totp"
        assert verify(user, code_at(secret, T0)) == "mfa_required"


def test_the_next_step_brings_a_new_code_that_works(make_user, totp_device):
    user = make_user()
    _, secret = totp_device(user)
    with clock.frozen(T0) as now:
        assert verify(user, code_at(secret, now.current)) == "totp"
        now.advance(seconds=30)
        assert verify(user, code_at(secret, now.current)) == "totp"


@pytest.mark.parametrize(("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_clock_drift_of_one_step_is_accepted_and_two_refused(make_user, totp_device, steps, accepted):
    user = make_user()
    _, secret = totp_device(user)
    code = code_at(secret, T0)  # the phone's clock stands at T0 …
    with clock.frozen(T0 + dt.timedelta(seconds=30 * steps)):  # … the server's is `steps` steps away
        assert verify(user, code) == ("totp" if accepted else "mfa_required")


def test_tolerance_zero_accepts_only_the_current_step(make_user, totp_device, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_TOTP_TOLERANCE": 0}
    user = make_user()
    _, secret = totp_device(user)
    with clock.frozen(T0 + dt.timedelta(seconds=30)) as now:
        assert verify(user, code_at(secret, T0)) == "mfa_required"
        assert verify(user, code_at(secret, now.current)) == "totp"


def test_a_code_of_one_users_device_does_not_work_for_another(make_user, totp_device):
    ann, bob = make_user(), make_user()
    _, secret = totp_device(ann)
    totp_device(bob)
    with clock.frozen(T0):
        assert verify(bob, code_at(secret, T0)) == "mfa_required"
        assert verify(ann, code_at(secret, T0)) == "totp"


def test_unconfirmed_devices_do_not_verify(make_user):
    user = make_user()
    device = services.start_totp(user=user)
    with clock.frozen(T0):
        assert verify(user, code_at(totp.secret_b32(device), T0)) == "mfa_required"


def test_any_of_several_apps_works_and_each_keeps_its_own_floor(make_user, totp_device):
    user = make_user()
    _, first = totp_device(user, name="Phone")
    _, second = totp_device(user, name="Tablet")
    with clock.frozen(T0):
        assert verify(user, code_at(second, T0)) == "totp"
        assert verify(user, code_at(first, T0)) == "totp"
        assert verify(user, code_at(first, T0)) == "mfa_required"


# --- concurrency -----------------------------------------------------------------------------------------




@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_of_one_code_let_exactly_one_through(make_user, totp_device, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_MAX_FAILURES": 100}  # every thread checks its code
    user = make_user()
    device, secret = totp_device(user)
    with clock.frozen(T0):
        code = code_at(secret, T0)
        results = race(12, lambda: services.verify(user=user, code=code, context=CTX))
    assert results.count("totp") == 1, results
    assert all(isinstance(r, MfaRequired) for r in results if r != "totp"), results
    assert TOTPDevice.objects.get(pk=device.pk).last_t == int(T0.timestamp()) // 30
    assert AuditEvent.objects.filter(event="MFA_FAILURE").count() == 11


@pytest.mark.django_db(transaction=True)
def test_concurrent_enrollment_confirmations_with_one_code_confirm_once(make_user, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_MAX_FAILURES": 100}
    user = make_user()
    device = services.start_totp(user=user)
    with clock.frozen(T0):
        code = code_at(totp.secret_b32(device), T0)
        results = race(8, lambda: services.confirm_totp(user=user, device_id=device.pk, code=code, context=CTX))
    wins = [r for r in results if isinstance(r, list)]
    assert len(wins) == 1, results
    assert all(isinstance(r, InvalidInput | NotFound) for r in results if not isinstance(r, list)), results
    assert AuditEvent.objects.filter(event="MFA_ENROLLED").count() == 1
    assert recovery.remaining(user) == 10
