"""Admin screens for agents, data sources and interactions (operators' view; the API is the product)."""

from __future__ import annotations

from django.contrib import admin

from twig_project.workspace.models import Agent, DataSource, Interaction


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("name", "org", "status", "model_provider", "key_source", "created_by", "updated_at", "deployed_at")
    list_filter = ("status", "model_provider", "key_source", "org")
    search_fields = ("name", "id", "org__slug")
    readonly_fields = ("id", "created_at", "updated_at", "deployed_at", "created_by", "updated_by")
    list_select_related = ("org", "created_by")


@admin.register(DataSource)
class DataSourceAdmin(admin.ModelAdmin):
    list_display = ("name", "org", "kind", "status", "last_synced_at")
    list_filter = ("kind", "status", "org")
    search_fields = ("name", "id", "org__slug")
    readonly_fields = ("id", "created_at", "updated_at", "last_synced_at", "created_by")
    list_select_related = ("org",)


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("id", "org", "agent", "user", "kind", "provider", "paid_by", "key_masked", "created_at")
    list_filter = ("kind", "provider", "paid_by", "org")
    search_fields = ("id", "agent__name", "user__email")
    list_select_related = ("org", "agent", "user")
    readonly_fields = ("id", "org", "agent", "user", "kind", "input", "answer", "provider", "model_name", "paid_by",
                       "external_key", "key_masked", "created_at")

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
