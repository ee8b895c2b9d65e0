"""Audit events in the admin: readable and filterable, never editable."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from twig_auth.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "event", "email", "org", "ip_address", "mfa_used", "target_repr")
    list_filter = ("event", "mfa_used", "org", ("timestamp", admin.DateFieldListFilter))
    search_fields = ("email", "ip_address", "target_id", "target_repr", "session_id")
    date_hierarchy = "timestamp"
    list_select_related = ("org",)
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
