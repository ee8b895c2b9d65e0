"""Admin screens for organizations, members and groups. Every change goes through the services.

Changing a member's role and resetting a member's MFA are sensitive: they need a second factor verified in
the last few minutes (:func:`twig_auth.mfa.guard.require_step_up`); the prompt re-posts the admin form.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django_otp.plugins.otp_totp.models import TOTPDevice

from twig_auth.core.context import RequestContext
from twig_auth.exceptions import TwigAuthError
from twig_auth.mfa import devices, enforcement, recovery
from twig_auth.mfa import services as mfa_services
from twig_auth.mfa.guard import require_step_up
from twig_auth.mfa.models import SmsDevice
from twig_auth.orgs import services
from twig_auth.orgs.models import Group, GroupMembership, Membership, Organization
from twig_auth.orgs.policy import cached_effective
from twig_auth.orgs.roles import Role
from twig_auth.passwords.services import unlock


def _ctx(request: HttpRequest) -> RequestContext:
    return RequestContext.from_request(request)


def _email(membership: Membership) -> str:
    return str(getattr(membership.user, membership.user.get_email_field_name(), "") or membership.user_id)


def _confirmed_devices(model: Any) -> Any:
    """Subquery: how many confirmed devices of ``model`` the row's user has (0 when none)."""
    counts = (model.objects.filter(user=OuterRef("user"), confirmed=True).order_by().values("user")
              .annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


def _when(moment: Any) -> str:
    return date_format(localtime(moment), "M j, Y, H:i") if moment else "—"


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
    list_display = ("user", "org", "role", "two_factor", "created_at", "role_changed_at")
    list_filter = ("role", "org")
    search_fields = ("user__email", "org__slug", "org__name")
    list_select_related = ("user", "org")
    autocomplete_fields = ("user",)
    readonly_fields = ("created_at", "role_changed_at", "mfa_required_since", "two_factor", "mfa_devices",
                       "last_login_at", "deactivated_at", "deactivation_reason", "reactivated_at")
    actions = ["unlock_accounts", "reset_mfa", "deactivate_members", "reactivate_members"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        # One query for the device counts of the whole page instead of two per row.
        return super().get_queryset(request).annotate(
            mfa_device_count=_confirmed_devices(TOTPDevice) + _confirmed_devices(SmsDevice))

    @admin.display(description="Two-factor")
    def two_factor(self, obj: Membership) -> str:
        """"2 devices", "none", and for a member the org's policy covers: "in grace until …" or "blocked"."""
        if obj.pk is None:
            return "—"
        count = getattr(obj, "mfa_device_count", None)
        if count is None:
            count = len(devices.confirmed_devices(obj.user_id))
        text = f"{count} device{'s' if count != 1 else ''}" if count else "none"
        if not count and enforcement.applies(obj.role, cached_effective(obj.org_id)["mfa"]):
            standing = enforcement.status(obj)
            if standing.blocked:
                text += " · blocked"
            elif standing.in_grace:
                text += f" · in grace until {_when(standing.deadline)}"
        return text

    @admin.display(description="Devices")
    def mfa_devices(self, obj: Membership) -> str:
        """The member's authenticator apps and phones (masked), and how many recovery codes are left."""
        if obj.pk is None:
            return "—"
        rows = devices.confirmed_devices(obj.user_id)
        if not rows:
            return "none"
        items = format_html_join("", "<li>{} — {} (added {}, last used {})</li>", (
            (row.name, row.detail, _when(row.created_at), _when(row.last_used_at)) for row in rows))
        return format_html("<ul>{}</ul><p>{} recovery code(s) left.</p>", items, recovery.remaining(obj.user_id))

    def changeform_view(self, request: HttpRequest, object_id: str | None = None, form_url: str = "",
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST" and object_id is not None:
            prompt = self._step_up_for_role_change(request, object_id)
            if prompt is not None:
                return prompt
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _step_up_for_role_change(self, request: HttpRequest, object_id: str) -> HttpResponse | None:
        """Ask for a second factor before a role change; the prompt re-posts this form after the code."""
        obj = self.get_object(request, unquote(object_id))
        new_role = request.POST.get("role")
        if obj is None or new_role not in Role.values or new_role == obj.role:
            return None  # nothing sensitive happens: the admin shows its own errors or saves other fields
        if not self.has_change_permission(request, obj):
            return None
        return require_step_up(request, action="change a member's role")

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

    @admin.action(description="Reset MFA of the selected members (removes their devices and recovery codes)",
                  permissions=["change"])
    def reset_mfa(self, request: HttpRequest, queryset: QuerySet[Membership]) -> HttpResponse | None:
        prompt = require_step_up(request, action="reset a member's MFA")
        if prompt is not None:
            return prompt
        context = _ctx(request)
        for membership in queryset.select_related("user", "org"):
            try:
                removed = mfa_services.reset_member(membership=membership, context=context)
            except TwigAuthError as exc:
                self.message_user(request, f"MFA of {_email(membership)} was not reset: {exc.detail}",
                                  messages.ERROR)
            else:
                self.message_user(request, f"MFA of {_email(membership)} was reset: {removed} device(s) removed. "
                                  "They must set up two-factor authentication again.", messages.SUCCESS)
        return None


    @admin.action(description="Deactivate the selected members in their organization (reversible)",
                  permissions=["change"])
    def deactivate_members(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user", "org"):
            if self._run(request, services.deactivate_member, membership=membership, context=_ctx(request)):
                self.message_user(request, f"{_email(membership)} is deactivated in {membership.org.name}.",
                                  messages.SUCCESS)

    @admin.action(description="Reactivate the selected members", permissions=["change"])
    def reactivate_members(self, request: HttpRequest, queryset: QuerySet[Membership]) -> HttpResponse | None:
        prompt = require_step_up(request, action="reactivate members")
        if prompt is not None:
            return prompt
        for membership in queryset.select_related("user", "org"):
            if self._run(request, services.reactivate_member, membership=membership, context=_ctx(request)):
                self.message_user(request, f"{_email(membership)} is active again in {membership.org.name}.",
                                  messages.SUCCESS)
        return None


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
        # The admin's change message reads these lists of a saved formset; the services below do the saving.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
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
