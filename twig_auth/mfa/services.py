"""MFA workflows: enroll (TOTP, SMS), verify a second factor, recovery codes, remove a device, admin reset.

Each takes a :class:`~twig_auth.core.context.RequestContext`, runs in one transaction where it writes, writes
its audit event and sends its signal. Codes are never logged, audited or returned in errors.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.views.decorators.debug import sensitive_variables
from django_otp.plugins.otp_totp.models import TOTPDevice

from twig_auth import signals
from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, MfaRequired, NotFound, PermissionDenied
from twig_auth.mfa import attempts, enforcement, phone, recovery, sms_codes, totp
from twig_auth.mfa.devices import RECOVERY, SMS, TOTP, has_mfa
from twig_auth.mfa.models import SmsDevice
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import Role

WRONG_CODE = "That code is not right. Check the code and try again."
EXPIRED_SETUP = "This setup has expired. Start again."


# --- enrollment --------------------------------------------------------------------------------------


def start_totp(*, user: Any) -> TOTPDevice:
    """Create the unconfirmed authenticator-app device whose secret the enrollment page shows."""
    return totp.new_device(user)


@sensitive_variables("code")
def confirm_totp(*, user: Any, device_id: Any, code: str, context: RequestContext,
                 name: str = totp.DEFAULT_NAME) -> list[str] | None:
    """Confirm an authenticator app with its first code; return new recovery codes on a first enrollment."""
    device = TOTPDevice.objects.filter(pk=_int(device_id), user=user, confirmed=False).first()
    if device is None:
        raise NotFound(EXPIRED_SETUP)
    _check_code(user, code, context, purpose="enroll", field="code", ok=lambda: totp.consume(device, code))
    return _confirmed(user, device, TOTP, context, name=name)


def start_sms(*, user: Any, number: str, context: RequestContext) -> SmsDevice:
    """Validate ``number``, create an unconfirmed SMS device for it and text it a code."""
    e164 = phone.normalize_phone(number)
    with transaction.atomic():
        SmsDevice.objects.filter(user=user, confirmed=False).delete()
        device = SmsDevice.objects.create(user=user, name="Text message", number=e164, confirmed=False)
    sms_codes.send_code(device)
    return device


def resend_sms(*, user: Any, device_id: Any, confirmed: bool | None = None) -> SmsDevice:
    """Send a new code to one of the user's SMS devices (throttled)."""
    qs = SmsDevice.objects.filter(pk=_int(device_id), user=user)
    if confirmed is not None:
        qs = qs.filter(confirmed=confirmed)
    device = qs.first()
    if device is None:
        raise NotFound("That phone is not set up.")
    sms_codes.send_code(device)
    return device


@sensitive_variables("code")
def confirm_sms(*, user: Any, device_id: Any, code: str, context: RequestContext) -> list[str] | None:
    """Confirm a phone with the code it received; return new recovery codes on a first enrollment."""
    device = SmsDevice.objects.filter(pk=_int(device_id), user=user, confirmed=False).first()
    if device is None:
        raise NotFound(EXPIRED_SETUP)
    _check_code(user, code, context, purpose="enroll", field="code", ok=lambda: sms_codes.consume(device, code))
    return _confirmed(user, device, SMS, context, name=device.name)


def _confirmed(user: Any, device: Any, method: str, context: RequestContext, *, name: str) -> list[str] | None:
    with transaction.atomic():
        first = not has_mfa(user)
        device.confirmed = True
        device.name = (name or device.name)[:64]
        device.save(update_fields=["confirmed", "name"])
        codes = recovery.generate(user) if first or recovery.remaining(user) == 0 else None
        record(Event.MFA_ENROLLED, context=context, user=user, target=device,
               details={"method": method, "recoveryCodesIssued": codes is not None})
    enforcement.forget_user(user.pk)
    signals.mfa_enrolled.send(sender=type(device), user=user, device=device, context=context)
    return codes


@sensitive_variables("codes")
def regenerate_recovery_codes(*, user: Any, context: RequestContext) -> list[str]:
    """Replace the user's recovery codes; the old ones stop working at once."""
    if not has_mfa(user):
        raise PermissionDenied("Set up an authenticator app or a phone before creating recovery codes.")
    with transaction.atomic():
        codes = recovery.generate(user)
        record(Event.MFA_RECOVERY_CODES_REGENERATED, context=context, user=user,
               details={"count": len(codes)})
    return codes


# --- verification ------------------------------------------------------------------------------------


@sensitive_variables("code")
def verify(*, user: Any, code: str, context: RequestContext, purpose: str = "login") -> str:
    """Check a second factor of ``user`` (authenticator code, SMS code or recovery code) and consume it.

    Return the method used. Raise :class:`MfaRequired` for a missing or wrong code (audited ``MFA_FAILURE``)
    and :class:`MfaThrottled` once ``MFA_MAX_FAILURES`` wrong codes have been tried.
    """
    if not str(code or "").strip():
        raise MfaRequired()
    method: list[str] = []

    def ok() -> bool:
        found = _match(user, code)
        if found:
            method.append(found)
        return found is not None

    _check_code(user, code, context, purpose=purpose, field=None, ok=ok)
    if method[0] == RECOVERY:
        record(Event.MFA_RECOVERY_CODE_USED, context=context, user=user,
               details={"remaining": recovery.remaining(user), "purpose": purpose}, mfa_used=True)
    signals.mfa_verified.send(sender=None, user=user, method=method[0], purpose=purpose, context=context)
    return method[0]


def _match(user: Any, code: str) -> str | None:
    for device in TOTPDevice.objects.filter(user=user, confirmed=True):
        if totp.consume(device, code):
            return TOTP
    for device in SmsDevice.objects.filter(user=user, confirmed=True):
        if sms_codes.consume(device, code):
            return SMS
    if recovery.consume(user, code):
        return RECOVERY
    return None


def _check_code(user: Any, code: str, context: RequestContext, *, purpose: str, field: str | None,
                ok: Any) -> None:
    """Reserve an attempt, run ``ok()``, count the outcome; audit and raise on a wrong code."""
    attempts.reserve(user)
    if ok():
        attempts.succeeded(user)
        return
    paused = attempts.failed(user)
    record(Event.MFA_FAILURE, context=context, user=user, details={"purpose": purpose, "paused": paused})
    if field is not None:
        raise InvalidInput({field: [WRONG_CODE]})
    raise MfaRequired(WRONG_CODE)


def send_login_sms(*, user: Any) -> SmsDevice | None:
    """Text a login code to the user's first phone, if they have one; return the device."""
    device = SmsDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is not None:
        sms_codes.send_code(device)
    return device


# --- removal and admin reset -------------------------------------------------------------------------


def remove_device(*, user: Any, kind: str, device_id: Any, context: RequestContext) -> None:
    """Remove one of the user's own devices (the page asks for a fresh second factor first).

    Removing the last authenticator or phone also deletes the recovery codes, which only back those up.
    """
    model = {TOTP: TOTPDevice, SMS: SmsDevice}.get(kind)
    device = model.objects.filter(pk=_int(device_id), user=user, confirmed=True).first() if model else None
    if device is None:
        raise NotFound("That device is not set up.")
    with transaction.atomic():
        record(Event.MFA_REMOVED, context=context, user=user, target=device, details={"method": kind})
        device.delete()
        if not has_mfa(user):
            recovery.delete_all(user)
    enforcement.forget_user(user.pk)
    signals.mfa_removed.send(sender=type(device), user=user, device=device, context=context)


def reset_member(*, membership: Membership, context: RequestContext) -> int:
    """An admin removes every device and recovery code of a member (lost phone); return devices removed.

    The actor must be an admin of the member's org and at least the member's rank; nobody resets their own.
    """
    from twig_auth.orgs.services import actor_membership, is_operator

    actor = actor_membership(membership.org, context)
    if actor is not None and actor.pk == membership.pk:
        raise PermissionDenied("You cannot reset your own MFA. Remove a device on the Two-factor page instead.")
    if not is_operator(context) and (
            actor is None or not actor.has_role(Role.ADMIN) or not actor.has_role(membership.role)):
        raise PermissionDenied("Only admins can reset a member's MFA, and only for members up to their own role.")
    user = membership.user
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[0] + SmsDevice.objects.filter(user=user).delete()[0]
        recovery.delete_all(user)
        record(Event.MFA_RESET, context=context, org=membership.org, target=membership,
               details={"member": getattr(user, user.get_email_field_name(), ""), "devicesRemoved": removed})
    attempts.reset(user)
    enforcement.forget_user(user.pk)
    signals.mfa_removed.send(sender=Membership, user=user, device=None, context=context)
    return removed


def _int(value: Any) -> int:
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise NotFound("Not found.")
    return int(text)
