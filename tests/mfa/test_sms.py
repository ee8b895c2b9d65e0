"""SMS codes: phone numbers, the console and Twilio-compatible gateways, expiry, throttles, single use."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.support.concurrency import race
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, MfaRequired, MfaThrottled, NotFound, SmsDeliveryFailed
from twig_auth.mfa import codes, recovery, services, sms
from twig_auth.mfa.models import SmsDevice
from twig_auth.mfa.phone import normalize_phone

CTX = RequestContext(ip="192.0.2.10", user_agent="pytest")
T0 = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.UTC)
NUMBER = "+14155552671"
CODE_RE = re.compile(r"verification code is (\d{6})\b")
SID, TOKEN, SENDER = "AC0123456789abcdef0123456789abcdef", "tw-auth-token-SECRET-4f1c9a", "+15005550006"


def texted(capfd: pytest.CaptureFixture[str], to: str = NUMBER) -> list[str]:
    """The codes the console gateway printed since the last call, checking the recipient."""
    out = capfd.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[sms to ")]
    assert all(line.startswith(f"[sms to {to}] ") for line in lines), out
    return [CODE_RE.search(line).group(1) for line in lines]


def enroll_phone(user: Any, capfd: pytest.CaptureFixture[str]) -> SmsDevice:
    device = services.start_sms(user=user, number=NUMBER, context=CTX)
    services.confirm_sms(user=user, device_id=device.pk, code=texted(capfd)[0], context=CTX)
    device.refresh_from_db()
    return device


def outcome(user: Any, code: str) -> str:
    try:
        return services.verify(user=user, code=code, context=CTX)
    except (MfaRequired, MfaThrottled) as exc:
        return exc.code


# --- phone numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "e164"), [("+1 415 555 2671", "+14155552671"), ("+1 (415) 555-2671", NUMBER),
                                           ("  +14155552671 ", NUMBER), ("+44 20 7946 0958", "+442079460958"),
                                           ("+49 30 12345678", "+493012345678"),
                                           ("+١ ٤١٥ ٥٥٥ ٢٦٧١", NUMBER)])  # libphonenumber reads any script's digits
def test_phone_numbers_are_kept_in_e164(raw, e164):
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["", None, "   ", "hello", "415 555 2671", "(415) 555-2671", "0044 20 7946 0958",
                                 "+1 000 000 0000", "+999 1234", "+14155552671999999",
                                 "+1 415 555 2671 1234 5678 9012 3456 7890", "+1\x00415 555 2671",
                                 "+" + "9" * 10_000, 14155552671, ["+14155552671"]])
def test_bad_phone_numbers_are_invalid_input_naming_the_field(raw):
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(raw)
    assert caught.value.code == "invalid" and list(caught.value.errors) == ["number"]
    assert caught.value.errors["number"] and all(isinstance(m, str) for m in caught.value.errors["number"])
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(raw, field="phone")
    assert list(caught.value.errors) == ["phone"]


def test_a_bad_number_creates_no_device_and_sends_nothing(make_user, capfd):
    user = make_user()
    with pytest.raises(InvalidInput) as caught:
        services.start_sms(user=user, number="415 555 2671", context=CTX)
    assert list(caught.value.errors) == ["number"]
    assert not SmsDevice.objects.exists()
    assert texted(capfd) == []


# --- enrollment through the console gateway --------------------------------------------------------------


def test_enrollment_texts_a_code_that_confirms_the_phone_once(make_user, capfd):
    user = make_user()
    with clock.frozen(T0):
        device = services.start_sms(user=user, number="+1 415 555 2671", context=CTX)
        assert (device.number, device.confirmed) == (NUMBER, False)
        [code] = texted(capfd)
        issued = services.confirm_sms(user=user, device_id=device.pk, code=code, context=CTX)
        assert len(issued) == 10 and recovery.remaining(user) == 10
        with pytest.raises(NotFound):  # confirmed: no longer an enrollment
            services.confirm_sms(user=user, device_id=device.pk, code=code, context=CTX)
        assert outcome(user, code) == "mfa_required"  # and the code is spent
    device.refresh_from_db()
    assert device.confirmed and device.token_digest == "" and device.valid_until is None
    event = AuditEvent.objects.get(event="MFA_ENROLLED")
    assert event.details == {"method": "sms", "recoveryCodesIssued": True} and event.user_id == user.pk


def test_the_message_names_the_issuer_and_the_expiry(make_user, capfd, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_TOTP_ISSUER": "Acme", "MFA_SMS_CODE_SECONDS": 600}
    services.start_sms(user=make_user(), number=NUMBER, context=CTX)
    out = capfd.readouterr().out
    assert re.fullmatch(r"\[sms to \+14155552671\] Your Acme verification code is \d{6}\. It expires in 10 minutes\. "
                        r"Never share it with anyone\.\n", out), out


def test_a_wrong_enrollment_code_names_the_field_and_is_audited(make_user, capfd):
    user = make_user()
    device = services.start_sms(user=user, number=NUMBER, context=CTX)
    code = texted(capfd)[0]
    bad = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(InvalidInput) as caught:
        services.confirm_sms(user=user, device_id=device.pk, code=bad, context=CTX)
    assert list(caught.value.errors) == ["code"]
    assert AuditEvent.objects.get(event="MFA_FAILURE").details == {"purpose": "enroll", "paused": False}
    assert services.confirm_sms(user=user, device_id=device.pk, code=code, context=CTX)  # the real one still works


def test_the_stored_row_holds_a_digest_never_the_code(make_user, capfd):
    user = make_user()
    with clock.frozen(T0):
        device = services.start_sms(user=user, number=NUMBER, context=CTX)
        [code] = texted(capfd)
        row = SmsDevice.objects.filter(pk=device.pk).values().get()
        assert row["token_digest"] == codes.code_digest(code, "sms")
        assert re.fullmatch(r"[0-9a-f]{64}", row["token_digest"])
        assert row["valid_until"] == T0 + dt.timedelta(seconds=300)
        assert not [k for k, v in row.items() if code in str(v)], row
        services.confirm_sms(user=user, device_id=device.pk, code=code, context=CTX)
    for event in AuditEvent.objects.all():
        assert code not in json.dumps(event.details) and code not in event.target_repr


def test_a_code_expires_after_five_minutes(make_user, capfd):
    user = make_user()
    with clock.frozen(T0) as now:
        device = services.start_sms(user=user, number=NUMBER, context=CTX)
        [code] = texted(capfd)
        now.advance(seconds=300)
        with pytest.raises(InvalidInput):
            services.confirm_sms(user=user, device_id=device.pk, code=code, context=CTX)
    assert not SmsDevice.objects.get(pk=device.pk).confirmed


def test_a_code_works_until_its_last_second(make_user, capfd):
    user = make_user()
    with clock.frozen(T0) as now:
        device = services.start_sms(user=user, number=NUMBER, context=CTX)
        [code] = texted(capfd)
        now.advance(seconds=299)
        assert services.confirm_sms(user=user, device_id=device.pk, code=code, context=CTX) is not None


def test_code_lifetime_follows_the_setting(make_user, capfd, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_SMS_CODE_SECONDS": 60}
    user = make_user()
    with clock.frozen(T0) as now:
        device = services.start_sms(user=user, number=NUMBER, context=CTX)
        [code] = texted(capfd)
        now.advance(seconds=60)
        with pytest.raises(InvalidInput):
            services.confirm_sms(user=user, device_id=device.pk, code=code, context=CTX)


# --- throttles ---------------------------------------------------------------------------------------------


def test_resending_waits_thirty_seconds_and_replaces_the_code(make_user, capfd):
    user = make_user()
    with clock.frozen(T0) as now:
        device = services.start_sms(user=user, number=NUMBER, context=CTX)
        [first] = texted(capfd)
        now.advance(seconds=10)
        with pytest.raises(MfaThrottled) as caught:
            services.resend_sms(user=user, device_id=device.pk, confirmed=False)
        assert caught.value.code == "rate_limit_exceeded" and caught.value.retry_after == 21
        assert texted(capfd) == []
        assert SmsDevice.objects.get(pk=device.pk).token_digest == codes.code_digest(first, "sms")  # unchanged
        now.advance(seconds=20)
        services.resend_sms(user=user, device_id=device.pk, confirmed=False)
        [second] = texted(capfd)
        if second != first:
            with pytest.raises(InvalidInput):
                services.confirm_sms(user=user, device_id=device.pk, code=first, context=CTX)
        assert services.confirm_sms(user=user, device_id=device.pk, code=second, context=CTX)


def test_at_most_five_messages_an_hour_per_phone(make_user, capfd):
    user = make_user()
    with clock.frozen(T0) as now:
        device = services.start_sms(user=user, number=NUMBER, context=CTX)
        for _ in range(4):
            now.advance(seconds=30)
            services.resend_sms(user=user, device_id=device.pk)
        assert len(texted(capfd)) == 5
        now.advance(seconds=30)
        with pytest.raises(MfaThrottled) as caught:
            services.resend_sms(user=user, device_id=device.pk)
        assert caught.value.retry_after == 3600 - 150 + 1
        now.advance(seconds=3600 - 150 - 1)
        with pytest.raises(MfaThrottled):
            services.resend_sms(user=user, device_id=device.pk)
        now.advance(seconds=1)
        services.resend_sms(user=user, device_id=device.pk)
        assert len(texted(capfd)) == 1
    assert SmsDevice.objects.get(pk=device.pk).sent_in_window == 1


def test_hourly_limit_follows_the_settings(make_user, capfd, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_SMS_MAX_PER_HOUR": 2, "MFA_SMS_RESEND_SECONDS": 0}
    user = make_user()
    with clock.frozen(T0):
        device = services.start_sms(user=user, number=NUMBER, context=CTX)
        services.resend_sms(user=user, device_id=device.pk)
        with pytest.raises(MfaThrottled) as caught:
            services.resend_sms(user=user, device_id=device.pk)
    assert caught.value.retry_after == 3601
    assert len(texted(capfd)) == 2


def test_resend_refuses_other_users_devices(make_user, capfd):
    ann, bob = make_user(), make_user()
    device = services.start_sms(user=ann, number=NUMBER, context=CTX)
    texted(capfd)
    for device_id in (device.pk, "999999", "x"):
        with pytest.raises(NotFound):
            services.resend_sms(user=bob, device_id=device_id)
    assert texted(capfd) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_resends_send_one_message(make_user, capfd):
    user = make_user()
    with clock.frozen(T0) as now:
        device = services.start_sms(user=user, number=NUMBER, context=CTX)
        texted(capfd)
        now.advance(seconds=30)
        results = race(10, lambda: services.resend_sms(user=user, device_id=device.pk))
    assert sum(isinstance(r, SmsDevice) for r in results) == 1, results
    assert all(isinstance(r, MfaThrottled) for r in results if not isinstance(r, SmsDevice)), results
    assert len(texted(capfd)) == 1
    assert SmsDevice.objects.get(pk=device.pk).sent_in_window == 2


# --- sign-in with a phone ----------------------------------------------------------------------------------


def test_a_login_code_is_texted_and_accepted_once(make_user, capfd):
    user = make_user()
    with clock.frozen(T0) as now:
        device = enroll_phone(user, capfd)
        now.advance(seconds=30)
        assert services.send_login_sms(user=user).pk == device.pk
        [code] = texted(capfd)
        assert outcome(user, code) == "sms"
        assert outcome(user, code) == "mfa_required"
    assert SmsDevice.objects.get(pk=device.pk).last_used_at == T0 + dt.timedelta(seconds=30)


def test_send_login_sms_for_a_user_without_a_phone_sends_nothing(make_user, capfd):
    assert services.send_login_sms(user=make_user()) is None
    assert texted(capfd) == []




@pytest.mark.django_db(transaction=True)
def test_concurrent_use_of_one_sms_code_lets_exactly_one_through(make_user, capfd, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_MAX_FAILURES": 100}  # every thread checks its code
    user = make_user()
    with clock.frozen(T0) as now:
        device = enroll_phone(user, capfd)
        now.advance(seconds=30)
        services.send_login_sms(user=user)
        [code] = texted(capfd)
        results = race(12, lambda: services.verify(user=user, code=code, context=CTX))
    assert results.count("sms") == 1, results
    assert all(isinstance(r, MfaRequired) for r in results if r != "sms"), results
    assert SmsDevice.objects.get(pk=device.pk).token_digest == ""


# --- gateways ----------------------------------------------------------------------------------------------


class RecordingGateway:
    """A project's own gateway, loaded by class path (the documented extension point)."""

    sent: list[tuple[str, str]] = []

    def send(self, to: str, body: str) -> None:
        RecordingGateway.sent.append((to, body))


class RefusingGateway:
    def send(self, to: str, body: str) -> None:
        raise sms.GatewayError("carrier said no")


def test_a_gateway_class_path_from_the_settings_is_used(make_user, settings, capfd):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_SMS_GATEWAY": "tests.mfa.test_sms.RecordingGateway"}
    RecordingGateway.sent = []
    user = make_user()
    device = services.start_sms(user=user, number=NUMBER, context=CTX)
    [(to, body)] = RecordingGateway.sent
    assert to == NUMBER and texted(capfd) == []
    assert services.confirm_sms(user=user, device_id=device.pk, code=CODE_RE.search(body).group(1), context=CTX)


def test_a_refusing_gateway_undoes_the_send_claim(make_user, settings, capfd, caplog):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_SMS_GATEWAY": "tests.mfa.test_sms.RefusingGateway"}
    user = make_user()
    with clock.frozen(T0), caplog.at_level(logging.WARNING, logger="twig_auth.mfa.sms"):
        with pytest.raises(SmsDeliveryFailed) as caught:
            services.start_sms(user=user, number=NUMBER, context=CTX)
        assert caught.value.code == "sms_delivery_failed"
        row = SmsDevice.objects.filter(user=user).values().get()
        assert (row["token_digest"], row["valid_until"], row["sent_at"], row["sent_in_window"]) == ("", None, None, 0)
        with pytest.raises(SmsDeliveryFailed):  # not MfaThrottled: the failed send did not count
            services.resend_sms(user=user, device_id=row["id"])
    assert "carrier said no" in caplog.text


class TwilioDouble:
    """A real HTTP server on 127.0.0.1 speaking Twilio's Messages API; it checks what it receives."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[tuple[int, bytes]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode()
                double.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw,
                                        "form": {k: v[0] for k, v in parse_qs(raw, strict_parsing=True).items()}})
                expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    status, body = 401, b'{"code": 20003, "message": "Authenticate", "status": 401}'
                elif self.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
                    status, body = 404, b'{"code": 20404, "message": "The requested resource was not found"}'
                elif double.replies:
                    status, body = double.replies.pop(0)
                else:
                    status, body = 201, json.dumps({"sid": "SM" + "0" * 32, "status": "queued"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def twilio(settings: Any) -> Iterator[TwilioDouble]:
    double = TwilioDouble()
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_SMS_GATEWAY": "twig_auth.mfa.sms.TwilioGateway",
                          "MFA_TWILIO": {"ACCOUNT_SID": SID, "AUTH_TOKEN": TOKEN, "FROM": SENDER,
                                         "BASE_URL": double.url + "/", "TIMEOUT": 5}}
    yield double
    double.close()


def test_twilio_gateway_posts_the_message_with_basic_auth(make_user, twilio, capfd):
    user = make_user()
    device = services.start_sms(user=user, number="+1 415 555 2671", context=CTX)
    [request] = twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert set(request["form"]) == {"To", "From", "Body"}
    assert (request["form"]["To"], request["form"]["From"]) == (NUMBER, SENDER)
    code = CODE_RE.search(request["form"]["Body"]).group(1)
    assert texted(capfd) == []  # nothing on the console
    assert services.confirm_sms(user=user, device_id=device.pk, code=code, context=CTX)


@pytest.mark.parametrize(("status", "body"), [
    (400, b'{"code": 21211, "message": "The \'To\' number +14155552671 is not a valid phone number.", "status": 400}'),
    (429, b'{"code": 20429, "message": "Too Many Requests", "status": 429}'),
    (500, b"<html><body>Internal Server Error</body></html>"),
    (503, b""),
])
def test_a_provider_error_fails_cleanly_undoes_the_claim_and_leaks_nothing(make_user, twilio, caplog, status, body):
    twilio.replies.append((status, body))
    user = make_user()
    with clock.frozen(T0), caplog.at_level(logging.DEBUG):
        with pytest.raises(SmsDeliveryFailed) as caught:
            services.start_sms(user=user, number=NUMBER, context=CTX)
        failed_code = CODE_RE.search(twilio.requests[0]["form"]["Body"]).group(1)
        device = SmsDevice.objects.get(user=user)
        assert device.token_digest == "" and device.sent_at is None and device.sent_in_window == 0
        services.resend_sms(user=user, device_id=device.pk)  # a retry right away is allowed, and goes through
        new_code = CODE_RE.search(twilio.requests[1]["form"]["Body"]).group(1)
        if new_code != failed_code:
            with pytest.raises(InvalidInput):  # the failed message's code never became valid
                services.confirm_sms(user=user, device_id=device.pk, code=failed_code, context=CTX)
        assert services.confirm_sms(user=user, device_id=device.pk, code=new_code, context=CTX)
    assert caught.value.code == "sms_delivery_failed"
    assert f"HTTP {status}" in caplog.text
    exposed = caplog.text + str(caught.value) + caught.value.detail + repr(caught.value.__cause__) \
        + repr(caught.value.__context__)
    for secret in (failed_code, TOKEN, base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()):
        assert secret not in exposed


def test_wrong_twilio_credentials_fail_without_showing_them(make_user, twilio, settings, caplog):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_TWILIO": {**settings.TWIG_AUTH["MFA_TWILIO"],
                                                                "AUTH_TOKEN": "wrong-token-XYZ"}}
    with caplog.at_level(logging.DEBUG), pytest.raises(SmsDeliveryFailed) as caught:
        services.start_sms(user=make_user(), number=NUMBER, context=CTX)
    assert "HTTP 401" in caplog.text and "Authenticate" in caplog.text
    assert "wrong-token-XYZ" not in caplog.text + str(caught.value)


def test_an_unreachable_provider_is_sms_delivery_failed(make_user, settings, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_SMS_GATEWAY": "twig_auth.mfa.sms.TwilioGateway",
                          "MFA_TWILIO": {"ACCOUNT_SID": SID, "AUTH_TOKEN": TOKEN, "FROM": SENDER,
                                         "BASE_URL": f"http://127.0.0.1:{port}", "TIMEOUT": 2}}
    with caplog.at_level(logging.WARNING), pytest.raises(SmsDeliveryFailed):
        services.start_sms(user=make_user(), number=NUMBER, context=CTX)
    assert "unreachable" in caplog.text and TOKEN not in caplog.text


def test_missing_twilio_settings_are_sms_delivery_failed_naming_the_keys(make_user, settings, caplog):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_SMS_GATEWAY": "twig_auth.mfa.sms.TwilioGateway",
                          "MFA_TWILIO": {"ACCOUNT_SID": SID}}
    with caplog.at_level(logging.WARNING), pytest.raises(SmsDeliveryFailed):
        services.start_sms(user=make_user(), number=NUMBER, context=CTX)
    assert "AUTH_TOKEN, FROM" in caplog.text


def test_masked_number_shows_only_the_country_code_and_last_four_digits():
    assert SmsDevice(number=NUMBER).masked_number == "+1•••••2671"
    assert NUMBER not in str(SmsDevice(name="Phone", number=NUMBER))


def test_a_failed_resend_leaves_the_code_already_delivered_working(make_user, twilio):
    user = make_user()
    with clock.frozen(T0) as now:
        device = services.start_sms(user=user, number=NUMBER, context=CTX)
        delivered = CODE_RE.search(twilio.requests[0]["form"]["Body"]).group(1)
        now.advance(seconds=30)
        twilio.replies.append((500, b'{"message": "Internal error"}'))
        with pytest.raises(SmsDeliveryFailed):
            services.resend_sms(user=user, device_id=device.pk)
        row = SmsDevice.objects.get(pk=device.pk)
        assert (row.sent_at, row.sent_in_window) == (T0, 1)  # the failed message did not count
        assert services.confirm_sms(user=user, device_id=device.pk, code=delivered, context=CTX)


def test_a_code_used_while_a_resend_fails_stays_spent(make_user, twilio, monkeypatch):
    from twig_auth.mfa import sms_codes

    user = make_user()
    with clock.frozen(T0) as now:
        device = services.start_sms(user=user, number=NUMBER, context=CTX)
        delivered = CODE_RE.search(twilio.requests[0]["form"]["Body"]).group(1)
        now.advance(seconds=30)
        real_digest = codes.code_digest

        def used_meanwhile(code: str, purpose: str) -> str:
            # runs inside send_code after it read the row and before it claims the send: the other tab
            # signs in with the delivered code right then
            monkeypatch.setattr(codes, "code_digest", real_digest)
            assert sms_codes.consume(device, delivered)
            return real_digest(code, purpose)

        monkeypatch.setattr(codes, "code_digest", used_meanwhile)
        twilio.replies.append((500, b"{}"))
        with pytest.raises(SmsDeliveryFailed):
            services.resend_sms(user=user, device_id=device.pk)
        assert codes.code_digest is real_digest  # the race really ran
        assert SmsDevice.objects.get(pk=device.pk).token_digest == ""
        with pytest.raises(InvalidInput):  # not revived by the undo
            services.confirm_sms(user=user, device_id=device.pk, code=delivered, context=CTX)
