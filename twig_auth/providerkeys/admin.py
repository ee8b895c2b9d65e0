"""External API keys in the admin: the mask, never the key; no add or change; delete through the service (audited).

Keys are added and replaced on Settings → External API keys (or :func:`.services.save_external_key`), where the
second factor is asked and the key is validated.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from twig_auth.core.admin import ReadOnlyAdminMixin
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import NotFound
from twig_auth.providerkeys import services
from twig_auth.providerkeys.models import ExternalApiKey

KEY_FIELDS = ("id", "org", "provider", "masked", "endpoint_url", "created_by", "created_at", "updated_by",
              "updated_at", "last_used_at")


@admin.register(ExternalApiKey)
class ExternalApiKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("org", "provider", "masked", "endpoint_url", "updated_at", "last_used_at")
    list_filter = ("provider", "org")
    search_fields = ("=id", "org__name", "org__slug", "endpoint_url")
    list_select_related = ("org",)
    fields = KEY_FIELDS
    readonly_fields = KEY_FIELDS
    exclude = ("secret",)
    ordering = ("org", "provider")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExternalApiKey]:
        # The ciphertext is not even loaded, so no widget, export or repr can decrypt it.
        return super().get_queryset(request).defer("secret")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("twig_auth.delete_externalapikey"))

    def delete_model(self, request: HttpRequest, obj: ExternalApiKey) -> None:
        with suppress(NotFound):  # deleted meanwhile: the admin's "deleted" message is still true
            services.delete_external_key(key=obj, context=RequestContext.from_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ExternalApiKey]) -> None:
        for key in queryset:
            self.delete_model(request, key)
