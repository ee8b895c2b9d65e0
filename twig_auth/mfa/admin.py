"""Second-factor devices in the admin: who has which device, never the secret behind it.

django-otp registers admins for ``TOTPDevice`` and ``StaticDevice`` that show the TOTP key, a QR code of it
and the static tokens. They are replaced here by read-only lists: user, name, confirmed, created and last
used. The key, SMS code digests and recovery-code digests are not even loaded. Devices are removed through
the services (the member's Two-factor page, or "Reset MFA" on Memberships), so every removal is audited.

Whichever of django-otp's admin modules and this one is imported first, ours wins: when ours comes first,
django-otp's ``register`` raises ``AlreadyRegistered``, which it swallows; when theirs comes first,
:func:`register` unregisters it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from twig_auth.core.admin import ReadOnlyAdminMixin
from twig_auth.mfa.models import SmsDevice

DEVICE_FIELDS = ("user", "name", "confirmed", "created_at", "last_used_at")


class DeviceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only device list. Subclasses set ``secret_fields``: deferred, so no page or repr can show them."""

    secret_fields: tuple[str, ...] = ()
    list_display: Any = DEVICE_FIELDS
    list_filter = ("confirmed", ("last_used_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email", "name")
    list_select_related = ("user",)
    fields: Any = DEVICE_FIELDS
    readonly_fields: Any = DEVICE_FIELDS
    ordering = ("-created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).defer(*self.secret_fields)


class TOTPDeviceAdmin(DeviceAdmin):
    secret_fields = ("key",)


class StaticDeviceAdmin(DeviceAdmin):
    """Recovery codes: how many are left, never the stored digests (no token inline)."""

    list_display = (*DEVICE_FIELDS, "codes_left")
    fields = readonly_fields = (*DEVICE_FIELDS, "codes_left")

    @admin.display(description="Recovery codes left")
    def codes_left(self, obj: StaticDevice) -> int:
        return StaticToken.objects.filter(device=obj).count()


class SmsDeviceAdmin(DeviceAdmin):
    """The phone is shown masked; the number in full and the code digest are not (the number is loaded only
    to mask it)."""

    secret_fields = ("token_digest",)
    list_display = ("user", "name", "phone", "confirmed", "created_at", "last_used_at")
    fields = readonly_fields = ("user", "name", "phone", "confirmed", "created_at", "last_used_at")

    @admin.display(description="Phone")
    def phone(self, obj: SmsDevice) -> str:
        return obj.masked_number


ADMINS: tuple[tuple[Any, type[admin.ModelAdmin]], ...] = (
    (TOTPDevice, TOTPDeviceAdmin), (StaticDevice, StaticDeviceAdmin), (SmsDevice, SmsDeviceAdmin),
)


def register(site: admin.AdminSite | None = None) -> None:
    """Put our device admins on ``site`` (default: the admin site), replacing django-otp's if present."""
    site = site or admin.site
    for model, model_admin in ADMINS:
        if site.is_registered(model):
            if isinstance(site.get_model_admin(model), model_admin):
                continue
            site.unregister(model)
        site.register(model, model_admin)
    if site.is_registered(StaticToken):
        site.unregister(StaticToken)


register()
