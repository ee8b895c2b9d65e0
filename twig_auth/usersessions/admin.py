"""Web sessions in the admin: see who is signed in where, and end sessions (audited)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from twig_auth.core.admin import ReadOnlyAdminMixin
from twig_auth.core.http import client_ip
from twig_auth.usersessions.models import UserSession
from twig_auth.usersessions.policy import end_session


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "org", "device_label", "ip", "created_at", "last_seen_at", "expires_at", "revoked_at",
                    "revoke_reason")
    list_filter = ("org", ("revoked_at", admin.EmptyFieldListFilter), "revoke_reason")
    search_fields = ("user__email", "ip", "device_label")
    list_select_related = ("user", "org")
    readonly_fields = ("user", "org", "device_label", "ip", "user_agent", "created_at", "last_seen_at", "expires_at",
                       "mfa_used", "revoked_at", "revoke_reason")
    exclude = ("data",)  # the user's session data stays private; the key alone is no credential (unsigned)
    actions = ["end_selected"]

    def has_end_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("twig_auth.change_usersession"))

    @admin.action(description="End the selected sessions", permissions=["end"])
    def end_selected(self, request: HttpRequest, queryset: QuerySet[UserSession]) -> None:
        ended = sum(end_session(s.pk, reason="admin_ended", actor=request.user, ip=client_ip(request))
                    for s in queryset)
        self.message_user(request, f"Ended {ended} session(s).", messages.SUCCESS)
