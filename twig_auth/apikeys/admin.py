"""API keys in the admin: read-only, revocable, never addable, and the secret's hash is never shown.

Keys are created through :func:`twig_auth.apikeys.services.issue_api_key` (the page, the API or
``manage.py twig_apikeys create``) so that the plaintext is shown exactly once.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from twig_auth.apikeys import services
from twig_auth.apikeys.models import ApiKey, ApiKeyUsage
from twig_auth.core import clock
from twig_auth.core.admin import ReadOnlyAdminMixin
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import TwigAuthError

KEY_FIELDS = ("id", "name", "prefix", "org", "created_by", "scopes", "allowed_ips", "environment", "state",
              "created_at", "expires_at", "last_used_at", "last_used_ip", "revoked_at", "revoked_by", "rolled_from",
              "usage_link")


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        now = clock.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "prefix", "org", "creator", "environment", "state", "created_at", "last_used_at")
    list_filter = ("org", "environment", StateFilter)
    search_fields = ("name", "key_id", "=id")
    list_select_related = ("org", "created_by__user")
    fields = KEY_FIELDS
    readonly_fields = KEY_FIELDS
    exclude = ("hashed_secret",)
    actions = ["revoke_selected", "clear_allowed_ips"]
    ordering = ("-created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        # The hash is not even loaded, so no widget, export or repr can leak it.
        return super().get_queryset(request).defer("hashed_secret")

    @admin.display(description="Key prefix")
    def prefix(self, obj: ApiKey) -> str:
        return f"{obj.prefix}…"

    @admin.display(description="Created by", ordering="created_by__user__email")
    def creator(self, obj: ApiKey) -> str:
        user = obj.created_by.user if obj.created_by else None
        return getattr(user, "email", "") or "—"

    @admin.display(description="State")
    def state(self, obj: ApiKey) -> str:
        return obj.state(clock.now()).capitalize()

    @admin.display(description="Usage")
    def usage_link(self, obj: ApiKey) -> str:
        url = reverse("admin:twig_auth_apikeyusage_changelist") + f"?key__id__exact={obj.pk}"
        return format_html('<a href="{}">Requests per day and endpoint</a>', url)

    # No delete (ReadOnlyAdminMixin): deleting would skip the audit event and the cache invalidation.

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("twig_auth.change_apikey"))

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        context = RequestContext.from_request(request)
        revoked, failed = 0, 0
        for key in queryset.select_related("org"):
            if key.revoked_at is not None:
                continue
            try:
                services.revoke_api_key(key=key, context=context)
            except TwigAuthError as exc:
                failed += 1
                self.message_user(request, f"{key}: {exc.detail}", messages.ERROR)
            else:
                revoked += 1
        if revoked:
            self.message_user(request, f"Revoked {revoked} key{'s' if revoked != 1 else ''}.", messages.SUCCESS)
        elif not failed:
            self.message_user(request, "The selected keys were already revoked.", messages.INFO)

    @admin.action(description="Lift the per-key IP allowlist of selected keys", permissions=["revoke"])
    def clear_allowed_ips(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        """Break glass: the key works again from wherever the org's allowlist allows (audited)."""
        context = RequestContext.from_request(request)
        cleared = 0
        for key in queryset.filter(revoked_at__isnull=True).exclude(allowed_ips=[]):
            try:
                services.set_allowed_ips(key=key, allowed_ips=[], context=context)
            except TwigAuthError as exc:
                self.message_user(request, f"{key}: {exc.detail}", messages.ERROR)
            else:
                cleared += 1
        self.message_user(request, f"Lifted the IP allowlist of {cleared} key{'s' if cleared != 1 else ''}.",
                          messages.SUCCESS if cleared else messages.INFO)


@admin.register(ApiKeyUsage)
class ApiKeyUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("day", "key", "endpoint", "status", "count")
    list_filter = (("day", admin.DateFieldListFilter), "status", "key__org")
    search_fields = ("endpoint", "key__name", "key__key_id")
    list_select_related = ("key",)
    date_hierarchy = "day"
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKeyUsage]:
        return super().get_queryset(request).select_related("key").defer("key__hashed_secret")

