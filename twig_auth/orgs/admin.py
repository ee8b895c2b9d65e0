"""Admin screens for organizations, members and groups. Every change goes through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from twig_auth.core.context import RequestContext
from twig_auth.exceptions import TwigAuthError
from twig_auth.orgs import services
from twig_auth.orgs.models import Group, GroupMembership, Membership, Organization
from twig_auth.passwords.services import unlock


def _ctx(request: HttpRequest) -> RequestContext:
    return RequestContext.from_request(request)


class ServiceErrorsMixin:
    """Show a domain error as an admin message instead of a 500."""

    def _run(self, request: HttpRequest, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except TwigAuthError as exc:
            self.message_user(request, exc.detail, messages.ERROR)  # type: ignore[attr-defined]
            return None


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "plan", "member_count", "created_at")
    list_filter = ("plan",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_at",)

    @admin.display(description="Members")
    def member_count(self, obj: Organization) -> int:
        return obj.memberships.count()


@admin.register(Membership)
class MembershipAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    list_display = ("user", "org", "role", "created_at", "role_changed_at")
    list_filter = ("role", "org")
    search_fields = ("user__email", "org__slug", "org__name")
    list_select_related = ("user", "org")
    autocomplete_fields = ("user",)
    readonly_fields = ("created_at", "role_changed_at")
    actions = ["unlock_accounts"]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        ro = list(super().get_readonly_fields(request, obj))
        return ro + ["org", "user"] if obj else ro

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if not change:
            created = self._run(request, services.add_member, org=obj.org, user=obj.user, role=obj.role,
                                context=_ctx(request))
            if created is not None:
                obj.pk = created.pk
                Membership.objects.filter(pk=created.pk).update(attributes=obj.attributes)
            return
        if "role" in form.changed_data:
            new_role = obj.role
            obj.role = form.initial.get("role", obj.role)
            self._run(request, services.change_role, membership=obj, role=new_role, context=_ctx(request))
            obj.refresh_from_db()
        if "attributes" in form.changed_data:
            Membership.objects.filter(pk=obj.pk).update(attributes=form.cleaned_data["attributes"])

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        self._run(request, services.remove_member, membership=obj, context=_ctx(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset:
            self.delete_model(request, membership)

    @admin.action(description="Unlock sign-in of the selected members")
    def unlock_accounts(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        count = 0
        for membership in queryset.select_related("user"):
            email = getattr(membership.user, membership.user.get_email_field_name(), "")
            count += unlock(email=email, context=_ctx(request))
        self.message_user(request, f"Unlocked {count} locked account(s).", messages.SUCCESS)


class GroupMembershipInline(admin.TabularInline):
    model = GroupMembership
    extra = 0
    autocomplete_fields = ("membership",)
    readonly_fields = ("created_at",)


@admin.register(Group)
class GroupAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    list_display = ("name", "org", "member_count", "created_at")
    list_filter = ("org",)
    search_fields = ("name", "org__slug")
    inlines = [GroupMembershipInline]

    @admin.display(description="Members")
    def member_count(self, obj: Group) -> int:
        return obj.group_memberships.count()

    def save_model(self, request: HttpRequest, obj: Group, form: Any, change: bool) -> None:
        ctx = _ctx(request)
        if change:
            saved = self._run(request, services.rename_group, group=Group.objects.get(pk=obj.pk), name=obj.name,
                              description=obj.description, context=ctx)
        else:
            saved = self._run(request, services.create_group, org=obj.org, name=obj.name,
                              description=obj.description, context=ctx)
        if saved is not None:
            obj.pk = saved.pk

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Route inline group-membership changes through the services, so each is audited."""
        ctx = _ctx(request)
        group = form.instance
        if group.pk is None:
            return
        for inline in formset.forms:
            if not inline.has_changed() and inline not in formset.deleted_forms:
                continue
            link = inline.instance
            if inline in formset.deleted_forms:
                if link.pk:
                    self._run(request, services.remove_from_group, link=link, context=ctx)
            elif link.pk is None:
                self._run(request, services.add_to_group, group=group, membership=link.membership,
                          role=link.role, context=ctx)
            elif "role" in inline.changed_data:
                self._run(request, services.change_group_role, link=link, role=link.role, context=ctx)

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        self._run(request, services.delete_group, group=obj, context=_ctx(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Group]) -> None:
        for group in queryset:
            self.delete_model(request, group)
