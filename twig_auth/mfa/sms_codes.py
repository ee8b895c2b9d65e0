"""Send and consume SMS codes atomically.

Sending claims the right to send with one conditional UPDATE that also stores the new code's digest: it
succeeds only if the resend wait (``MFA_SMS_RESEND_SECONDS``) is over and the device has sent fewer than
``MFA_SMS_MAX_PER_HOUR`` messages in its current hour. If the gateway then fails, the claim is undone.
Consuming is one conditional UPDATE that clears the digest, so a code works once, also under concurrency.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db.models import Case, F, Q, Value, When

from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.exceptions import MfaThrottled, SmsDeliveryFailed
from twig_auth.mfa import codes, sms
from twig_auth.mfa.models import SmsDevice

logger = logging.getLogger("twig_auth.mfa.sms")
HOUR = dt.timedelta(hours=1)


def message_body(code: str) -> str:
    minutes = max(1, app_settings.MFA_SMS_CODE_SECONDS // 60)
    return (f"Your {app_settings.MFA_TOTP_ISSUER} verification code is {code}. It expires in {minutes} minutes. "
            "Never share it with anyone.")


def send_code(device: SmsDevice) -> None:
    """Send a fresh code to ``device``; raise :class:`MfaThrottled` or :class:`SmsDeliveryFailed`."""
    now = clock.now()
    code = codes.new_sms_code()
    new_window = Q(window_started_at__isnull=True) | Q(window_started_at__lte=now - HOUR)
    resend_after = now - dt.timedelta(seconds=app_settings.MFA_SMS_RESEND_SECONDS)
    allowed = (Q(sent_at__isnull=True) | Q(sent_at__lte=resend_after)) \
        & (new_window | Q(sent_in_window__lt=app_settings.MFA_SMS_MAX_PER_HOUR))
    previous = SmsDevice.objects.filter(pk=device.pk).values("token_digest", "valid_until", "last_used_at", "sent_at",
                                                             "window_started_at", "sent_in_window").first() or {}
    digest = codes.code_digest(code, "sms")
    claimed = SmsDevice.objects.filter(allowed, pk=device.pk).update(
        token_digest=digest,
        valid_until=now + dt.timedelta(seconds=app_settings.MFA_SMS_CODE_SECONDS),
        sent_at=now,
        sent_in_window=Case(When(new_window, then=Value(1)), default=F("sent_in_window") + 1),
        window_started_at=Case(When(new_window, then=Value(now)), default=F("window_started_at")),
    )
    if not claimed:
        wait = _wait_seconds(device.pk, now)
        raise MfaThrottled(wait, "A code was sent a moment ago. Wait before asking for another one."
                           if wait <= app_settings.MFA_SMS_RESEND_SECONDS + 1 else
                           f"This phone has had {app_settings.MFA_SMS_MAX_PER_HOUR} codes in the last hour. "
                           f"Try again in {max(1, -(-wait // 60))} minutes, or use another method.")
    try:
        sms.get_gateway().send(device.number, message_body(code))
    except sms.GatewayError as exc:
        logger.warning("SMS to device %s failed: %s", device.pk, exc)
        _undo_claim(device.pk, digest, previous)
        raise SmsDeliveryFailed() from None


def _undo_claim(pk: int, digest: str, previous: dict[str, Any]) -> None:
    """Give back a failed send: it does not count, and the code delivered before it stays valid, unless that
    code was used after ``previous`` was read (``last_used_at`` moved): then it stays spent."""
    ours = SmsDevice.objects.filter(pk=pk, token_digest=digest)
    counters = {k: previous.get(k) for k in ("sent_at", "window_started_at")}
    counters["sent_in_window"] = previous.get("sent_in_window", 0)
    if not ours.filter(last_used_at=previous.get("last_used_at")).update(
            token_digest=previous.get("token_digest", ""), valid_until=previous.get("valid_until"), **counters):
        ours.update(token_digest="", valid_until=None, **counters)


def _wait_seconds(pk: int, now: dt.datetime) -> int:
    row = SmsDevice.objects.filter(pk=pk).values("sent_at", "window_started_at", "sent_in_window").first() or {}
    waits = [1]
    if row.get("sent_at"):
        waits.append(int((row["sent_at"] + dt.timedelta(seconds=app_settings.MFA_SMS_RESEND_SECONDS) - now)
                         .total_seconds()) + 1)
    if row.get("window_started_at") and row.get("sent_in_window", 0) >= app_settings.MFA_SMS_MAX_PER_HOUR:
        waits.append(int((row["window_started_at"] + HOUR - now).total_seconds()) + 1)
    return max(waits)


def consume(device: SmsDevice, token: str) -> bool:
    """Return True, once, for the device's current unexpired code."""
    code = codes.normalize(token)
    if len(code) != codes.SMS_DIGITS or not code.isdigit():
        return False
    now = clock.now()
    used = SmsDevice.objects.filter(pk=device.pk, token_digest=codes.code_digest(code, "sms"),
                                    valid_until__gt=now).update(token_digest="", valid_until=None, last_used_at=now)
    return used == 1
