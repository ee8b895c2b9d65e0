"""Recovery codes on django-otp's ``StaticDevice``: shown once, stored as keyed digests, single use.

``StaticToken.token`` holds 16 characters, so each code is stored as the first 16 hex digits (64 bits) of
its HMAC-SHA256 under a key derived from ``SECRET_KEY``: the database never holds a usable code. Using one
is a single ``DELETE``; of two concurrent uses exactly one deletes the row.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.mfa import codes

DEVICE_NAME = "Recovery codes"


@transaction.atomic
def generate(user: Any) -> list[str]:
    """Replace the user's recovery codes with new ones and return them (the only time they are shown)."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name=DEVICE_NAME, defaults={"confirmed": True})
    StaticDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.token_set.all().delete()
    fresh = codes.new_recovery_codes(app_settings.MFA_RECOVERY_CODE_COUNT)
    StaticToken.objects.bulk_create([StaticToken(device=device, token=codes.recovery_digest(c)) for c in fresh])
    return fresh


def consume(user: Any, code: str) -> bool:
    """Return True, once, for an unused recovery code of ``user``."""
    if not codes.looks_like_recovery_code(code):
        return False
    device_ids = list(StaticDevice.objects.filter(user=user, confirmed=True).values_list("pk", flat=True))
    if not device_ids:
        return False
    deleted, _ = StaticToken.objects.filter(device_id__in=device_ids, token=codes.recovery_digest(code)).delete()
    if deleted:
        StaticDevice.objects.filter(pk__in=device_ids).update(last_used_at=clock.now())
    return deleted > 0


def remaining(user: Any) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def remaining_by_user(users: Any) -> dict[Any, int]:
    """``{user id: unused recovery codes}`` for ``users`` (ids or a ``.values("user_id")`` queryset); one query."""
    from django.db.models import Count

    rows = (StaticToken.objects.filter(device__user_id__in=users, device__confirmed=True).order_by()
            .values("device__user_id").annotate(n=Count("id")).values_list("device__user_id", "n"))
    return dict(rows)


def delete_all(user: Any) -> None:
    StaticDevice.objects.filter(user=user).delete()
