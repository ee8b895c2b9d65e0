"""Audit events and chain heads in the admin: readable and filterable, never editable."""

from __future__ import annotations

from django.contrib import admin

from twig_auth.audit.models import AuditChainHead, AuditEvent
from twig_auth.core.admin import ReadOnlyAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("timestamp", "event", "email", "org", "ip_address", "mfa_used", "target_repr", "seq")
    list_filter = ("event", "mfa_used", "org", ("timestamp", admin.DateFieldListFilter))
    search_fields = ("email", "ip_address", "target_id", "target_repr", "session_id", "=hash")
    date_hierarchy = "timestamp"
    list_select_related = ("org",)
    show_full_result_count = False


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("chain", "org", "seq", "hash", "anchor_seq", "purged_at")
    list_select_related = ("org",)
