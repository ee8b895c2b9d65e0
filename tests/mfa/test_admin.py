"""MFA in the Django admin: device lists that never show a secret, a member's two-factor standing, and
"Reset MFA" behind a fresh second factor (audited ``MFA_RESET``, refused above the actor's rank and on self)."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.sites import AdminSite, AlreadyRegistered
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import oathtool
from tests.mfa.prompt import replayed
from tests.pages.conftest import text
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.mfa import admin as mfa_admin
from twig_auth.mfa import recovery
from twig_auth.mfa.models import SmsDevice
from twig_auth.orgs.models import Membership

CODE = "twig_step_up_code"
NUMBER = "+14155552671"
MEMBERS = "/admin/twig_auth/membership/"
DEVICE_PAGES = ("/admin/otp_totp/totpdevice/", "/admin/otp_static/staticdevice/", "/admin/twig_auth/smsdevice/")


def make_staff(membership: Membership) -> Membership:
    membership.user.is_staff = True
    membership.user.is_superuser = True
    membership.user.save(update_fields=["is_staff", "is_superuser"])
    return membership


def enroll_everything(user: Any, totp_device: Any) -> dict[str, Any]:
    """An authenticator app, a phone and recovery codes for ``user``; return every secret they involve."""
    device, secret_b32 = totp_device(user, name="Pixel authenticator")
    phone = SmsDevice.objects.create(user=user, name="Work phone", number=NUMBER, confirmed=True,
                                     token_digest="5e" * 32)
    codes = recovery.generate(user)
    digests = list(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    return {"totp": device, "phone": phone, "secrets": [device.key, device.key.upper(), secret_b32,
                                                        secret_b32.lower(), phone.token_digest, NUMBER,
                                                        NUMBER[1:], *codes, *digests]}



def messages_of(response: Any) -> str:
    return " ".join(html.unescape(m) for m in re.findall(r'<li class="(?:success|error|info|warning)">(.*?)</li>',
                                                         text(response), re.S))


@pytest.fixture
def ops(make_user: Any, logged_in: Any) -> Any:
    """A Django superuser who is no member of any org, signed in to the admin."""
    user = make_user("ops@example.test", is_staff=True, is_superuser=True)
    return logged_in(user)


# --- device admins never show secrets -----------------------------------------------------------------


def test_our_read_only_device_admins_replace_django_otps() -> None:
    assert isinstance(admin.site.get_model_admin(TOTPDevice), mfa_admin.TOTPDeviceAdmin)
    assert isinstance(admin.site.get_model_admin(StaticDevice), mfa_admin.StaticDeviceAdmin)
    assert isinstance(admin.site.get_model_admin(SmsDevice), mfa_admin.SmsDeviceAdmin)
    assert not admin.site.is_registered(StaticToken)
    with pytest.raises(NoReverseMatch):  # django-otp's QR code and key config pages are gone
        reverse("admin:otp_totp_totpdevice_config", kwargs={"pk": 1})
    with pytest.raises(NoReverseMatch):
        reverse("admin:otp_totp_totpdevice_qrcode", kwargs={"pk": 1})


def test_replacing_works_whichever_module_registers_first() -> None:
    from django_otp.plugins.otp_static.admin import StaticDeviceAdmin as OtpStaticAdmin
    from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin as OtpTotpAdmin

    otp_first = AdminSite(name="otp_first")
    otp_first.register(TOTPDevice, OtpTotpAdmin)
    otp_first.register(StaticDevice, OtpStaticAdmin)
    mfa_admin.register(otp_first)
    mfa_admin.register(otp_first)  # idempotent
    assert isinstance(otp_first.get_model_admin(TOTPDevice), mfa_admin.TOTPDeviceAdmin)
    assert isinstance(otp_first.get_model_admin(StaticDevice), mfa_admin.StaticDeviceAdmin)

    ours_first = AdminSite(name="ours_first")
    mfa_admin.register(ours_first)
    with pytest.raises(AlreadyRegistered):  # which django-otp's admin modules catch and ignore
        ours_first.register(TOTPDevice, OtpTotpAdmin)
    assert isinstance(ours_first.get_model_admin(TOTPDevice), mfa_admin.TOTPDeviceAdmin)


def test_device_pages_list_devices_but_never_a_secret(ops: Any, org: Any, make_member: Any,
                                                      totp_device: Any) -> None:
    member = make_member(org, "admin", email="ann@acme.test")
    enrolled = enroll_everything(member.user, totp_device)
    pages = [*DEVICE_PAGES,
             f"/admin/otp_totp/totpdevice/{enrolled['totp'].pk}/change/",
             f"/admin/otp_static/staticdevice/{StaticDevice.objects.get(user=member.user).pk}/change/",
             f"/admin/twig_auth/smsdevice/{enrolled['phone'].pk}/change/",
             f"{MEMBERS}{member.pk}/change/", MEMBERS]

    bodies = {}
    for url in pages:
        response = ops.get(url)
        assert response.status_code == 200, url
        bodies[url] = text(response)
        for secret in enrolled["secrets"]:
            assert secret not in bodies[url], f"{url} shows a secret"
        assert 'name="key"' not in bodies[url] and "otpauth://" not in bodies[url]

    assert "ann@acme.test" in bodies[DEVICE_PAGES[0]] and "Pixel authenticator" in bodies[DEVICE_PAGES[0]]
    assert "Recovery codes" in bodies[DEVICE_PAGES[1]] and "Recovery codes left" in bodies[DEVICE_PAGES[1]]
    assert "+1•••••2671" in bodies[DEVICE_PAGES[2]] and "Work phone" in bodies[DEVICE_PAGES[2]]
    member_page = bodies[f"{MEMBERS}{member.pk}/change/"]
    assert "Pixel authenticator" in member_page and "Text message to +1•••••2671" in member_page
    assert "10 recovery code(s) left." in member_page


def test_devices_cannot_be_added_changed_or_deleted_in_the_admin(ops: Any, org: Any, make_member: Any,
                                                                 totp_device: Any) -> None:
    member = make_member(org, email="ann@acme.test")
    device, _ = totp_device(member.user)
    url = f"/admin/otp_totp/totpdevice/{device.pk}/"

    assert ops.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    assert ops.get(f"{url}delete/").status_code == 403
    ops.post(f"{url}change/", {"name": "renamed", "key": "00" * 20, "confirmed": ""})
    device.refresh_from_db()
    assert (device.name, device.confirmed) == ("Phone app", True) and device.key != "00" * 20
    ops.post("/admin/otp_totp/totpdevice/", {"action": "delete_selected", "_selected_action": [device.pk]})
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


# --- the member's standing ----------------------------------------------------------------------------


def test_the_two_factor_column_shows_devices_grace_and_blocked(ops: Any, org: Any, make_member: Any,
                                                               totp_device: Any) -> None:
    enrolled = make_member(org, "admin", email="eve@acme.test")
    totp_device(enrolled.user)
    SmsDevice.objects.create(user=enrolled.user, name="Phone", number=NUMBER, confirmed=True)
    make_member(org, "user", email="uma@acme.test")
    graced = make_member(org, "admin", email="gina@acme.test")
    blocked = make_member(org, "admin", email="bob@acme.test")
    Membership.objects.filter(pk=blocked.pk).update(mfa_required_since=clock.now() - dt.timedelta(days=8))
    deadline = Membership.objects.get(pk=graced.pk).mfa_required_since + dt.timedelta(days=7)

    body = text(ops.get(MEMBERS))

    rows = {email: re.search(rf"{re.escape(email)}.*?</tr>", body, re.S).group(0)
            for email in ("eve@acme.test", "uma@acme.test", "gina@acme.test", "bob@acme.test")}
    assert ">2 devices<" in rows["eve@acme.test"]
    assert ">none<" in rows["uma@acme.test"]  # the default policy does not cover users
    assert "none · in grace until" in rows["gina@acme.test"]
    assert str(deadline.astimezone(dt.UTC).year) in rows["gina@acme.test"]
    assert "none · blocked" in rows["bob@acme.test"]
    detail = text(ops.get(f"{MEMBERS}{blocked.pk}/change/"))
    assert "none · blocked" in detail


def test_the_member_list_costs_the_same_queries_for_more_members(ops: Any, org: Any, make_member: Any,
                                                                 totp_device: Any) -> None:
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert ops.get(MEMBERS).status_code == 200
        return len(queries)

    for _ in range(2):
        totp_device(make_member(org, "user").user)
    few = count()
    for _ in range(5):
        totp_device(make_member(org, "manager").user)
    assert count() == few


# --- reset a member's MFA -----------------------------------------------------------------------------


@pytest.fixture
def ada(org: Any, make_member: Any, totp_device: Any) -> tuple[Membership, str]:
    """An org admin with staff access (model permissions, not a superuser: superusers are operators who may
    reset anyone) and an authenticator app; return the membership and its secret."""
    from django.contrib.auth.models import Permission

    membership = make_member(org, "admin", email="ada@acme.test")
    membership.user.is_staff = True
    membership.user.save(update_fields=["is_staff"])
    membership.user.user_permissions.set(Permission.objects.filter(content_type__app_label="twig_auth"))
    _, secret = totp_device(membership.user)
    return membership, secret


def reset(client: Any, *members: Membership, **extra: Any) -> Any:
    return client.post(MEMBERS, {"action": "reset_mfa", "_selected_action": [m.pk for m in members], **extra},
                       follow=True)


def test_reset_asks_for_a_code_then_removes_every_device_and_recovery_code(
        org: Any, make_member: Any, ada: tuple[Membership, str], logged_in: Any, totp_device: Any) -> None:
    actor, secret = ada
    target = make_member(org, "manager", email="lost-phone@acme.test")
    enroll_everything(target.user, totp_device)
    client = logged_in(actor.user)

    prompt = client.post(MEMBERS, {"action": "reset_mfa", "_selected_action": [target.pk]})

    assert prompt.status_code == 200
    assert "To reset a member&#x27;s MFA," in text(prompt)
    assert TOTPDevice.objects.filter(user=target.user).exists()
    assert not AuditEvent.objects.filter(event="MFA_RESET").exists()

    done = client.post(MEMBERS, {**replayed(prompt), CODE: oathtool(secret)}, follow=True)

    assert done.status_code == 200
    assert "MFA of lost-phone@acme.test was reset: 2 device(s) removed." in messages_of(done)
    assert not TOTPDevice.objects.filter(user=target.user).exists()
    assert not SmsDevice.objects.filter(user=target.user).exists()
    assert not StaticDevice.objects.filter(user=target.user).exists()
    assert recovery.remaining(target.user) == 0
    event = AuditEvent.objects.get(event="MFA_RESET")
    assert event.user_id == actor.user_id and event.org_id == org.pk and event.target_id == str(target.pk)
    assert event.details == {"member": "lost-phone@acme.test", "devicesRemoved": 2}
    assert TOTPDevice.objects.filter(user=actor.user).exists()  # the actor's own devices are untouched
    assert ">none<" in text(client.get(MEMBERS)).split("lost-phone@acme.test", 1)[1].split("</tr>", 1)[0]


def test_a_wrong_code_resets_nothing(org: Any, make_member: Any, ada: tuple[Membership, str], logged_in: Any,
                                     totp_device: Any) -> None:
    actor, secret = ada
    target = make_member(org, "user")
    totp_device(target.user)
    client = logged_in(actor.user)
    fields = replayed(client.post(MEMBERS, {"action": "reset_mfa", "_selected_action": [target.pk]}))
    right = oathtool(secret)

    response = client.post(MEMBERS, {**fields, CODE: "000000" if right != "000000" else "111111"})

    assert response.status_code == 400
    assert TOTPDevice.objects.filter(user=target.user).exists()
    assert not AuditEvent.objects.filter(event="MFA_RESET").exists()
    assert AuditEvent.objects.filter(event="MFA_FAILURE", user=actor.user).exists()


def test_an_actor_without_a_second_factor_cannot_reset(org: Any, make_member: Any, logged_in: Any,
                                                       totp_device: Any) -> None:
    actor = make_staff(make_member(org, "super_admin", email="sam@acme.test"))
    target = make_member(org, "user")
    totp_device(target.user)

    response = logged_in(actor.user).post(MEMBERS, {"action": "reset_mfa", "_selected_action": [target.pk]})

    assert response.status_code == 403
    assert "you need two-factor authentication" in text(response)
    assert TOTPDevice.objects.filter(user=target.user).exists()


def test_reset_is_refused_above_the_actors_rank_and_on_themselves(
        org: Any, owner: Membership, ada: tuple[Membership, str], logged_in: Any, totp_device: Any,
        stepped_up: Any) -> None:
    actor, _ = ada
    totp_device(owner.user)
    client = logged_in(actor.user)
    stepped_up()

    above = reset(client, owner)
    itself = reset(client, actor)

    assert "MFA of owner@acme.test was not reset: Only admins can reset a member" in messages_of(above)
    assert "MFA of ada@acme.test was not reset: You cannot reset your own MFA" in messages_of(itself)
    assert "was reset" not in messages_of(above) + messages_of(itself)
    assert TOTPDevice.objects.filter(user=owner.user).exists()
    assert TOTPDevice.objects.filter(user=actor.user).exists()
    assert not AuditEvent.objects.filter(event="MFA_RESET").exists()


def test_a_super_admin_may_reset_an_admin_and_mixed_selections_report_each(
        org: Any, owner: Membership, make_member: Any, logged_in: Any, totp_device: Any, stepped_up: Any) -> None:
    make_staff(owner)
    totp_device(owner.user)
    admin_member = make_member(org, "admin", email="ada@acme.test")
    totp_device(admin_member.user)
    client = logged_in(owner.user)
    stepped_up()

    response = reset(client, admin_member, owner)

    assert "MFA of ada@acme.test was reset: 1 device(s) removed." in messages_of(response)
    assert "MFA of owner@acme.test was not reset: You cannot reset your own MFA" in messages_of(response)
    assert not TOTPDevice.objects.filter(user=admin_member.user).exists()
    assert TOTPDevice.objects.filter(user=owner.user).exists()
    assert AuditEvent.objects.filter(event="MFA_RESET").count() == 1
