"""SmsDevice: a django-otp device that sends a 6-digit code by text message through the configured gateway.

TOTP and recovery codes use django-otp's own ``TOTPDevice`` and ``StaticDevice``. An SMS code is stored only
as a keyed digest, expires after ``MFA_SMS_CODE_SECONDS`` and is consumed by one conditional UPDATE, so two
concurrent submissions of the same code cannot both pass.
"""

from __future__ import annotations

from django.db import models
from django_otp.models import Device, TimestampMixin


class SmsDevice(TimestampMixin, Device):
    number = models.CharField(max_length=16, help_text="Phone number in E.164 form, e.g. +14155552671.")
    token_digest = models.CharField(max_length=64, blank=True, editable=False)
    valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    window_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    sent_in_window = models.PositiveIntegerField(default=0, editable=False)

    class Meta(Device.Meta):
        db_table = "twig_mfa_sms_devices"
        verbose_name = "SMS device"

    def __str__(self) -> str:
        return f"{self.name or 'SMS'} ({self.masked_number})"

    @property
    def masked_number(self) -> str:
        """``+1 ••• ••• 2671``: enough to recognise the phone, not enough to reuse the number."""
        n = self.number
        return f"{n[:2]}•••••{n[-4:]}" if len(n) > 6 else "•••"

    def generate_challenge(self) -> str:
        """django-otp interface: send a new code; return the sentence to show."""
        from twig_auth.mfa import sms_codes

        sms_codes.send_code(self)
        return f"We sent a code to {self.masked_number}."

    def verify_token(self, token: str) -> bool:
        """django-otp interface: consume the current code if ``token`` is it and it has not expired."""
        from twig_auth.mfa import sms_codes

        return sms_codes.consume(self, token)
