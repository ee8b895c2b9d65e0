"""Admin of connector connections: status and timestamps only, never a token. Rows are not added or edited
here; the "Disconnect" action revokes the tokens at the provider and deletes them (a plain delete would leave
them valid at the provider, so it is not offered)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages

from twig_auth.connectors import services
from twig_auth.connectors.models import OAuthToken
from twig_auth.core.context import RequestContext


@admin.register(OAuthToken)
class OAuthTokenAdmin(admin.ModelAdmin):
    list_display = ("provider", "subject", "org", "status", "expires_at", "last_refreshed_at", "updated_at")
    list_filter = ("provider", "status")
    search_fields = ("id", "subject", "org__slug")
    list_select_related = ("org",)
    fields = ("id", "org", "provider", "subject", "status", "token_type", "scope", "expires_at", "connected_by",
              "created_at", "updated_at", "last_refreshed_at", "last_error")
    readonly_fields = fields
    actions = ["disconnect"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: Any) -> dict[str, Any]:
        # the "delete selected" action needs the delete permission; disconnect is ours
        actions = super().get_actions(request)
        if not request.user.has_perm("twig_auth.delete_oauthtoken"):
            actions.pop("disconnect", None)
        return actions

    @admin.action(description="Disconnect (revoke at the provider and delete)")
    def disconnect(self, request: Any, queryset: Any) -> None:
        context = RequestContext.from_request(request)
        count = 0
        for token in queryset.select_related("org"):
            if services.disconnect(org=token.org, provider=token.provider, subject=token.subject,
                                   context=context) is not None:
                count += 1
        self.message_user(request, f"{count} connection{'s' if count != 1 else ''} disconnected.", messages.SUCCESS)
