"""What second factors a user has: one list for pages, one yes/no for login and enforcement."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django_otp.plugins.otp_totp.models import TOTPDevice

from twig_auth.mfa.models import SmsDevice

TOTP, SMS, RECOVERY = "totp", "sms", "recovery"
KINDS = (TOTP, SMS)


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "totp" | "sms"
    pk: int
    name: str
    detail: str
    created_at: dt.datetime | None
    last_used_at: dt.datetime | None

    @property
    def ref(self) -> str:
        """The id pages and forms use: ``totp-12``, ``sms-3``."""
        return f"{self.kind}-{self.pk}"


def confirmed_devices(user: Any) -> list[DeviceInfo]:
    """The user's confirmed TOTP and SMS devices, oldest first. Recovery codes are listed separately."""
    rows = [DeviceInfo(TOTP, d.pk, d.name, "Authenticator app", d.created_at, d.last_used_at)
            for d in TOTPDevice.objects.filter(user=user, confirmed=True)]
    rows += [DeviceInfo(SMS, d.pk, d.name, f"Text message to {d.masked_number}", d.created_at, d.last_used_at)
             for d in SmsDevice.objects.filter(user=user, confirmed=True)]
    return sorted(rows, key=lambda r: (r.created_at is None, r.created_at, r.kind, r.pk))


def has_mfa(user_or_id: Any) -> bool:
    """True when the user has a confirmed TOTP or SMS device (recovery codes alone do not count)."""
    user_id = getattr(user_or_id, "pk", user_or_id)
    return (TOTPDevice.objects.filter(user_id=user_id, confirmed=True).exists()
            or SmsDevice.objects.filter(user_id=user_id, confirmed=True).exists())


def methods_by_user(users: Any) -> dict[Any, list[str]]:
    """``{user id: ["totp", "sms"]}`` (confirmed devices only) for ``users``: a list of user ids or a queryset of
    them (``.values("user_id")``). Two queries whatever their number (listing pages, access reviews)."""
    out: dict[Any, list[str]] = {}
    for kind, model in ((TOTP, TOTPDevice), (SMS, SmsDevice)):
        for user_id in model.objects.filter(user_id__in=users, confirmed=True).values_list("user_id", flat=True):
            if kind not in out.setdefault(user_id, []):
                out[user_id].append(kind)
    return out


def sms_devices(user: Any) -> list[SmsDevice]:
    return list(SmsDevice.objects.filter(user=user, confirmed=True).order_by("pk"))


def has_totp(user: Any) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def parse_ref(ref: str) -> tuple[str, int] | None:
    """``"totp-12"`` → ``("totp", 12)``; anything else → None."""
    kind, _, number = str(ref).partition("-")
    if kind not in KINDS or not number.isascii() or not number.isdigit() or len(number) > 18:
        return None
    return kind, int(number)
