"""Admin helpers shared by the capabilities."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """For rows that only services write (audit events, usage counters, keys): view, never add, change
    or delete through the admin. Every model field is shown read-only unless ``readonly_fields`` says
    otherwise."""

    model: Any

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        declared = getattr(self, "readonly_fields", ())
        return declared or [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
