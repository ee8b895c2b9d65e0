"""Sign-in with a second factor through the Django test client: password, then an oathtool code, a texted code
or a recovery code; replay, wrong codes, throttles, expiry of the half-finished login and hostile input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from tests.mfa.test_pages import code_at, field_errors, text, texted
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.mfa import recovery, services, stepup
from twig_auth.usersessions.models import UserSession

LOGIN = "/login/"
VERIFY = "/login/verify/"
NUMBER = "+14155552671"
WRONG = "That code is not right. Check the code and try again."


@pytest.fixture
def ann(org: Any, make_member: Any) -> Any:
    return make_member(org, "manager", email="ann@acme.test").user


@pytest.fixture
def frozen() -> Any:
    with clock.frozen() as now:
        yield now


def password_step(client: Client, email: str = "ann@acme.test", **extra: str) -> Any:
    response = client.post(LOGIN, {"email": email, "password": PASSWORD, **extra})
    assert response.status_code == 302, text(response)[:400]
    return response


def signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def test_a_user_without_a_device_signs_in_with_the_password_alone(client: Client, ann: Any) -> None:
    response = password_step(client)

    assert response["Location"] == "/"
    assert signed_in(client)
    assert AuditEvent.objects.get(event="LOGIN_SUCCESS").mfa_used is False


def test_password_then_oathtool_code_signs_in_with_mfa_recorded(client: Client, ann: Any, totp_device: Any,
                                                                 org: Any) -> None:
    _, secret = totp_device(ann)

    response = password_step(client)
    assert response["Location"] == VERIFY
    assert not signed_in(client), "the password alone signs nobody in"
    assert not AuditEvent.objects.filter(event="LOGIN_SUCCESS").exists()

    page = client.get(VERIFY)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    body = text(page)
    assert "Two-step verification" in body and "ann@acme.test" in body
    assert 'autocomplete="one-time-code"' in body and 'inputmode="numeric"' in body
    assert "Use a recovery code" in body
    assert "Text me a code" not in body  # no phone set up

    done = client.post(VERIFY, {"code": code_at(secret)})
    assert done.status_code == 302 and done["Location"] == "/"
    assert signed_in(client)
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.user_id == ann.pk and event.org_id == org.pk
    assert event.mfa_used is True and event.details == {"method": "password", "mfaMethod": "totp"}
    assert stepup.is_fresh(client.session)
    session = UserSession.objects.get(user=ann, revoked_at__isnull=True)
    assert session.mfa_used is True
    assert client.get(VERIFY).status_code == 302, "the half-finished login is gone"


def test_a_code_is_accepted_once(client: Client, ann: Any, totp_device: Any, frozen: Any) -> None:
    _, secret = totp_device(ann)
    code = code_at(secret)
    password_step(client)
    assert client.post(VERIFY, {"code": code}).status_code == 302

    other = Client()
    password_step(other)
    replay = other.post(VERIFY, {"code": code})

    assert replay.status_code == 400
    assert field_errors(replay, "code") == [WRONG]
    assert not signed_in(other)
    assert AuditEvent.objects.filter(event="MFA_FAILURE", user=ann).count() == 1


def test_wrong_code_is_400_with_a_field_error_and_audited(client: Client, ann: Any, totp_device: Any,
                                                          frozen: Any) -> None:
    _, secret = totp_device(ann)
    password_step(client)
    wrong = f"{(int(code_at(secret)) + 500_000) % 1_000_000:06d}"

    response = client.post(VERIFY, {"code": wrong})

    assert response.status_code == 400
    assert field_errors(response, "code") == [WRONG]
    assert 'aria-invalid="true"' in text(response)
    assert not signed_in(client)
    failure = AuditEvent.objects.get(event="MFA_FAILURE")
    assert failure.user_id == ann.pk and failure.details == {"purpose": "login", "paused": False}
    assert wrong not in repr(failure.details)
    # The right code still works after a wrong one.
    assert client.post(VERIFY, {"code": code_at(secret)}).status_code == 302


def test_five_wrong_codes_pause_verification_with_429(client: Client, ann: Any, totp_device: Any,
                                                      frozen: Any) -> None:
    _, secret = totp_device(ann)
    password_step(client)
    statuses = [client.post(VERIFY, {"code": "000000"}).status_code for _ in range(5)]
    assert statuses == [400] * 5 or statuses[:4] == [400] * 4  # "000000" might be today's code, once in a million

    response = client.post(VERIFY, {"code": code_at(secret)})

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "Too many attempts. Try again in 15 minutes." in text(response)
    assert not signed_in(client)
    paused = [e.details["paused"] for e in AuditEvent.objects.filter(event="MFA_FAILURE").order_by("pk")]
    assert paused[-1] is True and not any(paused[:-1])


def test_per_ip_throttle_answers_429(client: Client, ann: Any, totp_device: Any, settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_CODE_RATE": "3/h"}  # hourly: no window edge mid-test
    _, secret = totp_device(ann)
    password_step(client)
    for _ in range(3):
        assert client.post(VERIFY, {"code": "abc"}).status_code == 400
    failures = AuditEvent.objects.filter(event="MFA_FAILURE").count()

    response = client.post(VERIFY, {"code": code_at(secret)})

    assert response.status_code == 429
    assert 1100 <= int(response["Retry-After"]) <= 1200  # one token of 3/h: back in 20 minutes
    assert response["X-RateLimit-Limit"] == "3" and response["X-RateLimit-Remaining"] == "0"
    assert "Too many verification attempts. Try again in 20 minutes." in text(response)
    assert not signed_in(client)
    assert AuditEvent.objects.filter(event="MFA_FAILURE").count() == failures, "refused before the code is checked"


def test_recovery_code_signs_in_once(client: Client, ann: Any, totp_device: Any) -> None:
    totp_device(ann)
    codes = recovery.generate(ann)

    password_step(client)
    response = client.post(VERIFY, {"code": codes[0].upper().replace("-", " ")})
    assert response.status_code == 302 and signed_in(client)
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.mfa_used is True and event.details["mfaMethod"] == "recovery"
    assert AuditEvent.objects.get(event="MFA_RECOVERY_CODE_USED").details["remaining"] == 9

    again = Client()
    password_step(again)
    reused = again.post(VERIFY, {"code": codes[0]})
    assert reused.status_code == 400 and field_errors(reused, "code") == [WRONG]
    assert recovery.remaining(ann) == 9


def test_text_me_a_code_then_sign_in_with_it(client: Client, ann: Any, capfd: Any) -> None:
    device = services.start_sms(user=ann, number=NUMBER, context=RequestContext())
    services.confirm_sms(user=ann, device_id=device.pk, code=texted(capfd)[0], context=RequestContext())

    with clock.frozen(clock.now() + dt.timedelta(seconds=31)):
        password_step(client)
        page = client.get(VERIFY)
        assert "Text me a code at +1•••••2671" in text(page)
        assert texted(capfd) == [], "nothing is sent until asked"

        sent = client.post(VERIFY, {"send_sms": "1"})
        assert sent.status_code == 200
        assert "We sent a code to +1•••••2671." in text(sent)
        [code] = texted(capfd)

        too_soon = client.post(VERIFY, {"send_sms": "1"})
        assert too_soon.status_code == 429 and int(too_soon["Retry-After"]) > 0
        assert texted(capfd) == []

        response = client.post(VERIFY, {"code": code})
    assert response.status_code == 302 and signed_in(client)
    assert AuditEvent.objects.get(event="LOGIN_SUCCESS").details["mfaMethod"] == "sms"


def test_next_survives_the_second_step(client: Client, ann: Any, totp_device: Any) -> None:
    _, secret = totp_device(ann)
    password_step(client, next="/settings/sessions/")

    response = client.post(VERIFY, {"code": code_at(secret)})

    assert response.status_code == 302 and response["Location"] == "/settings/sessions/"


def test_an_offsite_next_is_dropped(client: Client, ann: Any, totp_device: Any) -> None:
    _, secret = totp_device(ann)
    password_step(client, next="https://evil.test/")

    response = client.post(VERIFY, {"code": code_at(secret)})

    assert response.status_code == 302 and response["Location"] == "/"


def test_without_a_pending_login_the_page_sends_you_to_sign_in(client: Client, db: None) -> None:
    for response in (client.get(VERIFY), client.post(VERIFY, {"code": "123456"})):
        assert response.status_code == 302 and response["Location"] == LOGIN
    assert "Your sign-in expired, start again." in text(client.get(LOGIN))


def test_the_half_finished_login_expires(client: Client, ann: Any, totp_device: Any) -> None:
    _, secret = totp_device(ann)
    with clock.frozen() as now:
        password_step(client)
        now.advance(seconds=599)
        assert client.get(VERIFY).status_code == 200

        now.advance(seconds=2)
        response = client.post(VERIFY, {"code": code_at(secret)})
        assert response.status_code == 302 and response["Location"] == LOGIN
        assert "Your sign-in expired, start again." in text(client.get(LOGIN))
    assert not signed_in(client)
    assert not AuditEvent.objects.filter(event__in=["LOGIN_SUCCESS", "MFA_FAILURE"]).exists()


def test_a_deactivated_user_cannot_finish(client: Client, ann: Any, totp_device: Any) -> None:
    _, secret = totp_device(ann)
    password_step(client)
    type(ann).objects.filter(pk=ann.pk).update(is_active=False)

    response = client.post(VERIFY, {"code": code_at(secret)})

    assert response.status_code == 302 and response["Location"] == LOGIN
    assert not AuditEvent.objects.filter(event="LOGIN_SUCCESS").exists()


@pytest.mark.parametrize("data", [
    {}, {"code": ""}, {"code": "   "}, {"code": "9" * 10_000}, {"code": "\x00" * 6}, {"code": "<script>"},
    {"code": "12345678901234567890123456"}, {"code": "١٢٣٤٥٦"}, {"other": "1"},
], ids=["missing", "empty", "blank", "huge", "nul", "html", "too-long", "arabic-digits", "unknown-field"])
def test_hostile_codes_are_a_clear_400(client: Client, ann: Any, totp_device: Any, data: dict[str, str]) -> None:
    totp_device(ann)
    password_step(client)

    response = client.post(VERIFY, data)

    assert response.status_code == 400
    body = text(response)
    assert "Traceback" not in body and "<script>alert" not in body
    assert field_errors(response, "code")
    assert not signed_in(client)


def test_the_code_is_not_echoed_or_logged_in_the_failure(client: Client, ann: Any, totp_device: Any) -> None:
    totp_device(ann)
    password_step(client)

    response = client.post(VERIFY, {"code": "424242"})

    assert response.status_code == 400
    assert 'value="424242"' not in text(response)
