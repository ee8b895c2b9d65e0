"""Settings → Two-factor authentication through the Django test client: enrollment with real oathtool codes
and console-gateway text messages, recovery codes shown once, removal behind a fresh second factor, the
step-up page, the grace-period banner and the block after it."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import oathtool
from tests.pages.conftest import HOSTILE, field_errors, text
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import MfaRequired
from twig_auth.mfa import recovery, services, stepup
from twig_auth.mfa.models import SmsDevice

OVERVIEW = "/settings/mfa/"
TOTP = "/settings/mfa/totp/"
SMS = "/settings/mfa/sms/"
RECOVERY = "/settings/mfa/recovery/"
VERIFY = "/mfa/verify/"
NUMBER = "+14155552671"
WRONG = "That code is not right"


# --- helpers (also used by test_login_flow) ---------------------------------------------------------------


def secret_on(response: Any) -> str:
    match = re.search(r'id="totp-secret" data-secret="([A-Z2-7]+)"', text(response))
    assert match, "no TOTP secret on the page"
    return match.group(1)


def device_on(response: Any) -> str:
    match = re.search(r'<input type="hidden" name="device" value="(\d+)"', text(response))
    assert match, "no device id on the page"
    return match.group(1)


def codes_on(response: Any) -> list[str]:
    return re.findall(r'<code class="recovery-code">([^<]+)</code>', text(response))


def code_at(secret: str, at: dt.datetime | None = None) -> str:
    return oathtool(secret, at=(at or clock.now()).timestamp())


def texted(capfd: pytest.CaptureFixture[str], to: str = NUMBER) -> list[str]:
    """The 6-digit codes the console gateway printed to ``to`` since the last call."""
    out = capfd.readouterr().out
    return re.findall(rf"\[sms to {re.escape(to)}\] .*? code is (\d{{6}})\.", out)


def enroll_totp(client: Any, **extra: str) -> tuple[str, list[str], Any]:
    """Add an authenticator app through the pages; return (secret, recovery codes shown, final response)."""
    page = client.get(TOTP)
    secret = secret_on(page)
    response = client.post(TOTP, {"device": device_on(page), "code": code_at(secret), **extra})
    return secret, codes_on(response), response


def session_text(client: Any) -> str:
    return repr(dict(client.session.items()))


@pytest.fixture
def member(owner: Any) -> Any:
    """owner@acme.test: super admin of Acme, so Acme's default policy requires MFA (7-day grace)."""
    return owner.user


@pytest.fixture
def signed_in(client: Any, member: Any, logged_in: Any) -> Any:
    return logged_in(member)


@pytest.fixture
def frozen() -> Any:
    """Stop the clock now (sessions made just before stay valid): TOTP steps and SMS waits become exact."""
    with clock.frozen() as now:
        yield now


# --- overview -------------------------------------------------------------------------------------------


def test_overview_requires_sign_in(client: Any, db: None) -> None:
    response = client.get(OVERVIEW)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/settings/mfa/")


def test_overview_without_devices_offers_both_methods_and_the_grace_period(signed_in: Any) -> None:
    response = signed_in.get(OVERVIEW)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = text(response)
    assert "<h1>Two-factor authentication</h1>" in body
    assert "Add authenticator app" in body and "Add phone (SMS)" in body
    assert "No second factor yet." in body
    assert "Your organization requires two-factor authentication. Set it up within 7 days" in body
    assert "Create new recovery codes" not in body  # nothing to back up yet


def test_a_plain_user_is_not_told_it_is_required(client: Any, org: Any, make_member: Any, logged_in: Any) -> None:
    logged_in(make_member(org, "user").user)

    body = text(client.get(OVERVIEW))

    assert "requires two-factor" not in body
    assert "Add authenticator app" in body


def test_overview_lists_devices_with_remove_buttons_and_recovery_count(signed_in: Any, member: Any,
                                                                       totp_device: Any) -> None:
    device, _ = totp_device(member, name="Work phone")
    recovery.generate(member)
    recovery.consume(member, recovery.generate(member)[0])

    body = text(signed_in.get(OVERVIEW))

    assert "Work phone" in body
    assert f'href="/settings/mfa/devices/totp-{device.pk}/remove/"' in body
    assert "<strong>9</strong> of 10 codes left." in body
    assert "Create new recovery codes" in body
    assert "Two-factor authentication is on." in body
    assert "Set it up within" not in body


def test_menu_links_to_the_page_and_the_banner_counts_the_grace_days(signed_in: Any, member: Any) -> None:
    with clock.frozen(clock.now() + dt.timedelta(days=2, hours=1)):
        body = text(signed_in.get("/"))

    assert '<a href="/settings/mfa/">Two-factor authentication</a>' in body
    assert 'class="mfa-banner"' in body
    assert "Set it up within <strong>5 days</strong>" in body
    assert 'href="/settings/mfa/?next=/"' in body


def test_no_banner_once_enrolled_or_when_not_required(client: Any, signed_in: Any, member: Any, org: Any,
                                                      totp_device: Any, make_member: Any, logged_in: Any) -> None:
    totp_device(member)
    from twig_auth.mfa import enforcement

    enforcement.forget_user(member.pk)
    assert 'class="mfa-banner"' not in text(signed_in.get("/"))

    logged_in(make_member(org, "manager").user)
    assert 'class="mfa-banner"' not in text(client.get("/"))


def expire_grace(membership: Any) -> None:
    """Move the start of the requirement 7 days and a minute back (the session itself stays young)."""
    from twig_auth.mfa import enforcement

    type(membership).objects.filter(pk=membership.pk).update(
        mfa_required_since=clock.now() - dt.timedelta(days=7, minutes=1))
    enforcement.forget_member(membership)


def test_after_the_grace_period_every_page_sends_the_member_to_enrollment(signed_in: Any, owner: Any) -> None:
    expire_grace(owner)

    response = signed_in.get("/settings/sessions/")
    assert response.status_code == 302
    assert response["Location"] == "/settings/mfa/?next=%2Fsettings%2Fsessions%2F"

    page = signed_in.get(response["Location"])
    assert page.status_code == 200  # the overview is exempt
    body = text(page)
    assert "your time to set it up is over" in body
    assert "← Back to where you were" in body
    assert 'href="/settings/mfa/totp/?next=/settings/sessions/"' in body
    assert 'class="mfa-banner"' not in text(signed_in.get(TOTP))
    assert signed_in.get(SMS).status_code == 200


def test_a_blocked_member_who_enrolls_goes_back_to_work(signed_in: Any, owner: Any) -> None:
    expire_grace(owner)
    assert signed_in.get("/").status_code == 302

    page = signed_in.get(TOTP, {"next": "/"})
    response = signed_in.post(TOTP, {"device": device_on(page), "code": code_at(secret_on(page)), "next": "/"})

    assert response.status_code == 200 and len(codes_on(response)) == 10
    assert signed_in.get("/").status_code == 200


def test_a_hostile_next_is_not_offered_as_a_way_back(signed_in: Any) -> None:
    body = text(signed_in.get(OVERVIEW, {"next": "https://evil.test/steal"}))

    assert "evil.test" not in body


# --- authenticator app ----------------------------------------------------------------------------------


def test_totp_page_shows_a_qr_code_and_the_secret_and_reuses_the_setup(signed_in: Any, member: Any) -> None:
    first = signed_in.get(TOTP)

    assert first.status_code == 200
    assert "no-store" in first["Cache-Control"]
    body = text(first)
    assert "<svg" in body and 'aria-label="QR code to add owner@acme.test' in body
    secret = secret_on(first)
    assert len(secret) == 32  # 160 bits, base32 without padding
    grouped = " ".join(secret[i:i + 4] for i in range(0, 32, 4))
    assert grouped == " ".join(re.findall(r'<span class="totp-secret__group">([A-Z2-7]{4})</span>', body))
    assert 'autocomplete="one-time-code"' in body and 'inputmode="numeric"' in body

    again = signed_in.get(TOTP)
    assert secret_on(again) == secret and device_on(again) == device_on(first)
    assert TOTPDevice.objects.filter(user=member).count() == 1
    assert not TOTPDevice.objects.get(user=member).confirmed


def test_enroll_with_an_oathtool_code_shows_recovery_codes_once(signed_in: Any, member: Any) -> None:
    secret, codes, response = enroll_totp(signed_in, name="  My   phone ")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "This is the only time these codes are shown." in text(response)
    assert "Download as text" in text(response) and 'download="twig-recovery-codes.txt"' in text(response)
    assert len(codes) == 10 and len(set(codes)) == 10
    device = TOTPDevice.objects.get(user=member)
    assert device.confirmed and device.name == "My phone"
    assert recovery.remaining(member) == 10
    event = AuditEvent.objects.get(event="MFA_ENROLLED")
    assert event.user_id == member.pk and event.details == {"method": "totp", "recoveryCodesIssued": True}
    # The user just proved possession: sensitive actions need no new code for a while.
    assert stepup.is_fresh(signed_in.session)
    # The codes exist only in that response: not in the session, not on the overview.
    stored = session_text(signed_in)
    assert not any(code in stored or code.replace("-", "") in stored for code in codes)
    overview = text(signed_in.get(OVERVIEW))
    assert not any(code in overview for code in codes)
    assert "<strong>10</strong> of 10 codes left." in overview


def test_each_recovery_code_works_once(signed_in: Any, member: Any) -> None:
    _, codes, _ = enroll_totp(signed_in)
    ctx = RequestContext()

    assert services.verify(user=member, code=codes[3].upper(), context=ctx) == "recovery"
    with pytest.raises(MfaRequired):
        services.verify(user=member, code=codes[3], context=ctx)
    assert recovery.remaining(member) == 9


def test_wrong_code_is_a_field_error_and_an_audited_failure(signed_in: Any, member: Any, frozen: Any) -> None:
    page = signed_in.get(TOTP)
    secret = secret_on(page)
    wrong = f"{(int(code_at(secret)) + 1) % 1_000_000:06d}"

    response = signed_in.post(TOTP, {"device": device_on(page), "code": wrong, "name": "Phone"})

    assert response.status_code == 400
    assert field_errors(response, "code") == ["That code is not right. Check the code and try again."]
    assert 'aria-describedby="id_code_error id_code_helptext"' in text(response) or \
        'aria-describedby="id_code_helptext id_code_error"' in text(response)
    assert secret_on(response) == secret, "the same setup stays on the page"
    assert not TOTPDevice.objects.get(user=member).confirmed
    assert AuditEvent.objects.filter(event="MFA_FAILURE", user=member).count() == 1
    assert not AuditEvent.objects.filter(event="MFA_ENROLLED").exists()


def test_too_many_wrong_codes_answer_429_with_retry_after(signed_in: Any, member: Any, frozen: Any) -> None:
    page = signed_in.get(TOTP)
    secret, device = secret_on(page), device_on(page)
    for _ in range(5):
        assert signed_in.post(TOTP, {"device": device, "code": "000000"}).status_code in (400, 429)

    response = signed_in.post(TOTP, {"device": device, "code": code_at(secret)})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many attempts" in text(response)
    assert not TOTPDevice.objects.get(user=member).confirmed


def test_a_second_app_adds_no_new_codes_and_returns_to_next(signed_in: Any, member: Any, frozen: Any) -> None:
    _, codes, _ = enroll_totp(signed_in)
    frozen.advance(seconds=60)

    page = signed_in.get(TOTP, {"next": "/settings/sessions/"})
    assert 'name="next" value="/settings/sessions/"' in text(page)
    response = signed_in.post(TOTP, {"device": device_on(page), "code": code_at(secret_on(page)),
                                     "name": "Tablet", "next": "/settings/sessions/"})

    assert response.status_code == 302 and response["Location"] == "/settings/sessions/"
    assert TOTPDevice.objects.filter(user=member, confirmed=True).count() == 2
    assert recovery.remaining(member) == 10 and len(codes) == 10
    assert "Your authenticator app is set up." in text(signed_in.get(OVERVIEW))


def test_first_enrollment_continue_button_goes_to_next(signed_in: Any) -> None:
    page = signed_in.get(TOTP, {"next": "/settings/api-keys/"})
    response = signed_in.post(TOTP, {"device": device_on(page), "code": code_at(secret_on(page)),
                                     "next": "/settings/api-keys/"})

    assert response.status_code == 200 and len(codes_on(response)) == 10
    assert '<a class="button button--primary" href="/settings/api-keys/">Continue</a>' in text(response)


def test_an_offsite_next_is_ignored_after_enrollment(signed_in: Any, totp_device: Any, member: Any) -> None:
    totp_device(member)
    recovery.generate(member)
    page = signed_in.get(TOTP)
    response = signed_in.post(TOTP, {"device": device_on(page), "code": code_at(secret_on(page)),
                                     "next": "https://evil.test/"})

    assert response.status_code == 302 and response["Location"] == OVERVIEW


@pytest.mark.parametrize("data", [
    {},
    {"code": "123456"},
    {"device": "", "code": "123456"},
    {"device": "abc", "code": "123456"},
    {"device": "9" * 40, "code": "123456"},
    {"device": "1", "code": ""},
    {"device": "1", "code": "12345"},
    {"device": "1", "code": "1234567"},
    {"device": "1", "code": "12ab56"},
    {"device": "1", "code": "9" * 10_000},
    {"device": "1", "code": "\x00\x00\x00\x00\x00\x00"},
    {"device": "1", "code": "123456", "name": "x" * 500},
    {"device": "1", "code": "123456", "name": "bad\x00name"},
], ids=["empty", "no-device", "blank-device", "letters-device", "huge-device", "no-code", "short", "long", "letters",
        "huge-code", "nul-code", "long-name", "nul-name"])
def test_malformed_totp_posts_are_400_and_confirm_nothing(signed_in: Any, member: Any, data: dict[str, str]) -> None:
    signed_in.get(TOTP)

    response = signed_in.post(TOTP, data)

    assert response.status_code == 400
    assert "Traceback" not in text(response)
    assert 'role="alert"' in text(response) or 'class="field__errors"' in text(response)
    assert not TOTPDevice.objects.filter(user=member, confirmed=True).exists()
    assert not AuditEvent.objects.filter(event__in=["MFA_ENROLLED", "MFA_FAILURE"]).exists()


def test_another_users_setup_cannot_be_confirmed(signed_in: Any, member: Any, org: Any, make_member: Any) -> None:
    other = make_member(org, "user").user
    theirs = services.start_totp(user=other)
    from twig_auth.mfa import totp

    response = signed_in.post(TOTP, {"device": str(theirs.pk), "code": code_at(totp.secret_b32(theirs))})

    assert response.status_code == 400
    assert "This setup has expired. Start again." in text(response)
    theirs.refresh_from_db()
    assert not theirs.confirmed
    assert not TOTPDevice.objects.filter(user=member, confirmed=True).exists()


def test_totp_name_is_escaped(signed_in: Any, member: Any) -> None:
    enroll_totp(signed_in, name=HOSTILE["html"][:60])

    body = text(signed_in.get(OVERVIEW))
    assert "<script>alert(1)</script>" not in body
    assert html.escape("<script>alert(1)</script>") in body


# --- text message ---------------------------------------------------------------------------------------


def test_enroll_a_phone_with_the_texted_code(signed_in: Any, member: Any, capfd: Any) -> None:
    step1 = signed_in.get(SMS)
    assert step1.status_code == 200 and "Mobile phone number" in text(step1)
    assert 'type="tel"' in text(step1) and 'autocomplete="tel"' in text(step1)

    sent = signed_in.post(SMS, {"number": "+1 415-555-2671"})
    assert sent.status_code == 303 and sent["Location"] == SMS
    [code] = texted(capfd)

    step2 = signed_in.get(SMS)
    body = text(step2)
    assert "Step 2 of 2" in body and "+1•••••2671" in body
    assert "We sent it to <strong class=\"masked-number\">+1•••••2671</strong>" in body
    assert "Send a new code" in body

    response = signed_in.post(SMS, {"device": device_on(step2), "code": code})
    assert response.status_code == 200
    assert len(codes_on(response)) == 10
    phone = SmsDevice.objects.get(user=member)
    assert phone.confirmed and phone.number == NUMBER
    assert AuditEvent.objects.get(event="MFA_ENROLLED").details["method"] == "sms"
    assert stepup.is_fresh(signed_in.session)
    assert "Text message to +1•••••2671" in text(signed_in.get(OVERVIEW))


@pytest.mark.parametrize("number", ["", "4155552671", "+1 555", "+999 123", "x" * 100, "<script>", "+1415\x00"])
def test_a_bad_number_is_a_field_error_and_texts_nothing(signed_in: Any, member: Any, capfd: Any,
                                                         number: str) -> None:
    response = signed_in.post(SMS, {"number": number})

    assert response.status_code == 400
    assert field_errors(response, "number")
    assert not SmsDevice.objects.filter(user=member).exists()
    assert texted(capfd) == []


class FailingGateway:
    def send(self, to: str, body: str) -> None:
        from twig_auth.mfa.sms import GatewayError

        raise GatewayError("provider down")


def test_a_gateway_failure_is_503_with_a_clear_message(signed_in: Any, settings: Any, member: Any) -> None:
    from twig_auth.mfa import sms

    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "MFA_SMS_GATEWAY": f"{__name__}.FailingGateway"}
    sms.reset()

    response = signed_in.post(SMS, {"number": NUMBER})

    assert response.status_code == 503
    assert "We could not send the text message." in text(response)
    assert "provider down" not in text(response)


def test_resend_waits_then_sends_a_new_code_and_the_old_one_stops_working(signed_in: Any, member: Any, capfd: Any,
                                                                           frozen: Any) -> None:
    signed_in.post(SMS, {"number": NUMBER})
    [old] = texted(capfd)
    device = device_on(signed_in.get(SMS))

    too_soon = signed_in.post(SMS, {"device": device, "resend": "1"})
    assert too_soon.status_code == 429
    assert 0 < int(too_soon["Retry-After"]) <= 31
    assert texted(capfd) == []

    frozen.advance(seconds=31)
    again = signed_in.post(SMS, {"device": device, "resend": "1"})
    assert again.status_code == 200
    assert "We sent a new code to +1•••••2671." in text(again)
    [new] = texted(capfd)

    if old != new:
        stale = signed_in.post(SMS, {"device": device, "code": old})
        assert stale.status_code == 400
        assert field_errors(stale, "code") == ["That code is not right. Check the code and try again."]
    response = signed_in.post(SMS, {"device": device, "code": new})
    assert response.status_code == 200 and len(codes_on(response)) == 10


def test_sms_confirm_without_a_setup_or_for_another_user_starts_over(signed_in: Any, org: Any, make_member: Any,
                                                                      capfd: Any) -> None:
    other = make_member(org, "user").user
    theirs = services.start_sms(user=other, number="+14155550100", context=RequestContext())
    [their_code] = texted(capfd, "+14155550100")

    response = signed_in.post(SMS, {"device": str(theirs.pk), "code": their_code})
    assert response.status_code == 400
    assert "This setup has expired. Start again." in text(response)

    signed_in.post(SMS, {"number": NUMBER})
    response = signed_in.post(SMS, {"device": str(theirs.pk), "code": their_code})
    assert response.status_code == 400
    theirs.refresh_from_db()
    assert not theirs.confirmed

    response = signed_in.post(SMS, {"device": str(theirs.pk), "resend": "1"})
    assert response.status_code == 400
    assert texted(capfd, "+14155550100") == []


def test_use_a_different_number_goes_back_to_step_one(signed_in: Any, capfd: Any) -> None:
    signed_in.post(SMS, {"number": NUMBER})
    assert "Step 2 of 2" in text(signed_in.get(SMS))

    assert "Step 1 of 2" in text(signed_in.get(SMS, {"change": "1"}))
    assert "Step 1 of 2" in text(signed_in.get(SMS))


# --- recovery codes --------------------------------------------------------------------------------------


def test_recovery_get_goes_to_the_overview(signed_in: Any) -> None:
    response = signed_in.get(RECOVERY)

    assert response.status_code == 302 and response["Location"] == OVERVIEW


def test_new_recovery_codes_need_a_fresh_code_then_replace_the_old_ones(signed_in: Any, member: Any,
                                                                         totp_device: Any, frozen: Any) -> None:
    _, secret = totp_device(member)
    old = recovery.generate(member)

    prompt = signed_in.post(RECOVERY)
    assert prompt.status_code == 200
    assert "Confirm it&#x27;s you" in text(prompt) or "Confirm it's you" in text(prompt)
    assert "To create new recovery codes" in text(prompt)
    assert codes_on(prompt) == []
    assert recovery.remaining(member) == 10

    wrong = signed_in.post(RECOVERY, {"twig_step_up_code": "000000"})
    assert wrong.status_code == 400 and codes_on(wrong) == []

    response = signed_in.post(RECOVERY, {"twig_step_up_code": code_at(secret)})
    assert response.status_code == 200
    new = codes_on(response)
    assert len(new) == 10 and not set(new) & set(old)
    assert "Your new recovery codes" in text(response)
    assert AuditEvent.objects.filter(event="MFA_RECOVERY_CODES_REGENERATED", user=member).count() == 1
    ctx = RequestContext()
    with pytest.raises(MfaRequired):
        services.verify(user=member, code=old[0], context=ctx)
    assert services.verify(user=member, code=new[0], context=ctx) == "recovery"


def test_recovery_codes_without_a_device_are_refused(signed_in: Any, stepped_up: Any, member: Any) -> None:
    response = signed_in.post(RECOVERY)
    assert response.status_code == 403  # the step-up page: set up a second factor first
    assert "Set up two-factor authentication" in text(response)

    stepped_up()
    response = signed_in.post(RECOVERY)
    assert response.status_code == 302 and response["Location"] == OVERVIEW
    assert "Set up an authenticator app or a phone before creating recovery codes." in text(signed_in.get(OVERVIEW))
    assert recovery.remaining(member) == 0


# --- removal ---------------------------------------------------------------------------------------------


def test_remove_asks_to_confirm_then_for_a_fresh_code(signed_in: Any, member: Any, totp_device: Any,
                                                      frozen: Any) -> None:
    device, secret = totp_device(member, name="Old phone")
    recovery.generate(member)
    url = f"/settings/mfa/devices/totp-{device.pk}/remove/"

    confirm = signed_in.get(url)
    assert confirm.status_code == 200
    assert "Remove “Old phone”?" in text(confirm)
    assert "This is your only second factor." in text(confirm)

    prompt = signed_in.post(url)
    assert prompt.status_code == 200 and "To remove a two-factor device" in text(prompt)
    assert TOTPDevice.objects.filter(pk=device.pk).exists()

    response = signed_in.post(url, {"twig_step_up_code": code_at(secret)})
    assert response.status_code == 302 and response["Location"] == OVERVIEW
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert recovery.remaining(member) == 0
    event = AuditEvent.objects.get(event="MFA_REMOVED")
    assert event.user_id == member.pk and event.details == {"method": "totp"}
    assert "“Old phone” was removed. Your recovery codes were deleted too." in text(signed_in.get(OVERVIEW))


def test_remove_when_recently_verified_needs_no_prompt(signed_in: Any, stepped_up: Any, member: Any,
                                                       totp_device: Any) -> None:
    keep, _ = totp_device(member, name="Keep")
    drop, _ = totp_device(member, name="Drop")
    stepped_up()

    response = signed_in.post(f"/settings/mfa/devices/totp-{drop.pk}/remove/")

    assert response.status_code == 302
    assert list(TOTPDevice.objects.filter(user=member).values_list("pk", flat=True)) == [keep.pk]


@pytest.mark.parametrize("ref", ["totp-999999", "sms-1", "recovery-1", "totp-", "totp-abc", "totp--1", "x",
                                 "totp-" + "9" * 40, "totp-１２"])
def test_unknown_device_refs_are_404(signed_in: Any, stepped_up: Any, ref: str) -> None:
    stepped_up()

    assert signed_in.get(f"/settings/mfa/devices/{ref}/remove/").status_code == 404
    assert signed_in.post(f"/settings/mfa/devices/{ref}/remove/").status_code == 404


def test_another_users_device_is_404_and_stays(signed_in: Any, stepped_up: Any, org: Any, make_member: Any,
                                               totp_device: Any) -> None:
    theirs, _ = totp_device(make_member(org, "user").user)
    stepped_up()

    url = f"/settings/mfa/devices/totp-{theirs.pk}/remove/"
    assert signed_in.get(url).status_code == 404
    assert signed_in.post(url).status_code == 404
    assert TOTPDevice.objects.filter(pk=theirs.pk).exists()
    assert not AuditEvent.objects.filter(event="MFA_REMOVED").exists()


# --- the step-up page ----------------------------------------------------------------------------------------


def test_verify_page_marks_the_session_fresh_and_goes_to_next(signed_in: Any, member: Any, totp_device: Any,
                                                              frozen: Any) -> None:
    _, secret = totp_device(member)

    page = signed_in.get(VERIFY, {"next": "/settings/api-keys/"})
    assert page.status_code == 200
    assert 'name="next" value="/settings/api-keys/"' in text(page)
    assert 'autocomplete="one-time-code"' in text(page)

    wrong = signed_in.post(VERIFY, {"code": "000000", "next": "/settings/api-keys/"})
    assert wrong.status_code == 400 and WRONG in text(wrong)
    assert not stepup.is_fresh(signed_in.session)

    response = signed_in.post(VERIFY, {"code": code_at(secret), "next": "/settings/api-keys/"})
    assert response.status_code == 302 and response["Location"] == "/settings/api-keys/"
    assert stepup.is_fresh(signed_in.session)

    replay = signed_in.post(VERIFY, {"code": code_at(secret), "next": "/"})
    assert replay.status_code == 400, "a code is accepted once"


def test_verify_ignores_an_offsite_next_and_rejects_junk(signed_in: Any, member: Any, totp_device: Any) -> None:
    _, secret = totp_device(member)

    for junk in ["", "x" * 5000, "<script>", "12 34 56 78 90 12 34 56 78"]:
        response = signed_in.post(VERIFY, {"code": junk})
        assert response.status_code == 400 and "Traceback" not in text(response)

    response = signed_in.post(VERIFY, {"code": code_at(secret), "next": "https://evil.test/"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_verify_without_a_device_says_to_set_one_up(signed_in: Any) -> None:
    response = signed_in.get(VERIFY)

    assert response.status_code == 403
    assert "Set up two-factor authentication" in text(response)
