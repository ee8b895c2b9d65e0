"""Admin screens for grants, ABAC policies, separation-of-duties rules and time windows.

Every write goes through :mod:`twig_auth.authz.services`, so it is checked and audited like the same change
made from a page or the API. The add/change forms call the service while validating, and show its errors on
the fields they concern (a policy document's problems at their paths, such as ``policy.conditions.0``).
Grants and SoD rules cannot be edited: revoke or remove one and add another.

This module also replaces the Membership and Group admins of :mod:`twig_auth.orgs.admin` with subclasses that
validate and save ``access_control`` (time windows) through :func:`services.set_access_control`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from twig_auth.authz import registry, services, sod
from twig_auth.authz.models import Grant, Policy, SodRule
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, TwigAuthError
from twig_auth.orgs import admin as orgs_admin
from twig_auth.orgs.models import Group, Membership

DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _ctx(request: HttpRequest) -> RequestContext:
    return RequestContext.from_request(request)


def window_text(document: Any) -> str:
    """``{"accessControl": {...}}`` (or its body) in a few words: "09:00–17:00 Europe/Berlin · Mon, Tue"."""
    if not document:
        return "—"
    body = document.get("accessControl", document) if isinstance(document, dict) else None
    if not isinstance(body, dict) or not body:
        return "—"
    parts = []
    hours = body.get("allowedHours")
    if isinstance(hours, dict):
        zone = f" {hours['timezone']}" if hours.get("timezone") else " (org time zone)"
        parts.append(f"{hours.get('start', 0):02d}:00–{hours.get('end', 24):02d}:00{zone}")
    days = body.get("allowedDays")
    if isinstance(days, list):
        parts.append(", ".join(DAY_ABBR[d - 1] for d in days if isinstance(d, int) and 1 <= d <= 7))
    return " · ".join(parts) or "—"


def add_service_errors(form: forms.BaseForm, exc: InvalidInput, *, prefixes: dict[str, str] | None = None) -> None:
    """Put each ``InvalidInput`` field error on its form field: ``access_control.allowedHours.end`` on
    ``access_control`` (prefixed with its path), ``policy.*`` paths on the field ``prefixes`` names, the rest
    on the form."""
    prefixes = prefixes or {}
    for key, msgs in exc.errors.items():
        head, _, rest = key.partition(".")
        field = prefixes.get(head, head)
        if field in form.fields:
            for msg in msgs:
                form.add_error(field, f"{key if head in prefixes else rest}: {msg}" if rest or head in prefixes
                               else msg)
        else:
            for msg in msgs:
                form.add_error(None, f"{key}: {msg}" if key not in ("non_field_errors", "__all__") else msg)


class ServiceForm(forms.ModelForm):
    """A model form whose validation ends by calling a service (``call``); its result is ``self.result``.

    The service is the validator of record: uniqueness and constraints are left to it, and a domain error shows
    on the form instead of a 500.
    """

    request: HttpRequest | None = None
    error_prefixes: dict[str, str] = {}
    result: Any = None

    def call(self, context: RequestContext) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def validate_unique(self) -> None:
        """The service checks uniqueness (and says so more clearly)."""

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors:
            return
        assert self.request is not None
        try:
            self.result = self.call(_ctx(self.request))
        except InvalidInput as exc:
            add_service_errors(self, exc, prefixes=self.error_prefixes)
        except TwigAuthError as exc:
            self.add_error(None, exc.detail)


class ServiceFormAdmin(admin.ModelAdmin):
    """Hands the request to the form, and saves nothing itself: the form's service did."""

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        result = getattr(form, "result", None)
        if result is not None and result is not obj:
            obj.__dict__.update({k: v for k, v in result.__dict__.items() if k != "_state"})
            obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing related to save (no many-to-many fields or inlines)."""

    def _run(self, request: HttpRequest, fn: Any, **kwargs: Any) -> bool:
        try:
            fn(context=_ctx(request), **kwargs)
        except TwigAuthError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return False
        return True


# --- grants ----------------------------------------------------------------------------------------------


class GrantForm(ServiceForm):
    resource_type = forms.ChoiceField(choices=())
    resource_id = forms.CharField(max_length=64, help_text='The resource\'s id, or "*" for every one of its type '
                                  "in the organization.")
    action = forms.CharField(max_length=40)
    access_control = forms.JSONField(required=False, help_text='Optional time window: {"accessControl": '
                                     '{"allowedHours": {"start": 9, "end": 17, "timezone": "Europe/Berlin"}, '
                                     '"allowedDays": [1, 2, 3, 4, 5]}}')

    class Meta:
        model = Grant
        fields = ("org", "resource_type", "resource_id", "action", "user", "group", "expires_at", "access_control")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        types = registry.all_types()
        if "resource_type" in self.fields:  # the read-only view of a grant has no fields
            self.fields["resource_type"].choices = [(name, name) for name in sorted(types)]
            self.fields["action"].help_text = "; ".join(f"{n}: {', '.join(t.actions)}"
                                                        for n, t in sorted(types.items()))

    def call(self, context: RequestContext) -> Grant:
        data = self.cleaned_data
        return services.grant_permission(
            org=data["org"], resource_type=data["resource_type"], resource_id=data["resource_id"],
            action=data["action"], user=data.get("user"), group=data.get("group"), expires_at=data.get("expires_at"),
            access_control=data.get("access_control"), context=context)


@admin.register(Grant)
class GrantAdmin(ServiceFormAdmin):
    form = GrantForm
    list_display = ("resource_display", "action", "grantee", "expires_at", "window", "org", "created_at")
    list_filter = ("org", "resource_type", "action")
    search_fields = ("=id", "resource_id", "user__email", "group__name")
    list_select_related = ("org", "user", "group")
    autocomplete_fields = ("user", "group")
    readonly_fields = ("id", "created_by", "created_at")

    @admin.display(description="Resource", ordering="resource_type")
    def resource_display(self, obj: Grant) -> str:
        return obj.resource

    @admin.display(description="Grantee")
    def grantee(self, obj: Grant) -> str:
        if obj.group_id:
            return f"group {obj.group.name}"
        user = obj.user
        return str(getattr(user, user.get_email_field_name(), "") or user.pk) if user is not None else "—"

    @admin.display(description="Time window")
    def window(self, obj: Grant) -> str:
        return window_text(obj.access_control)

    def has_change_permission(self, request: HttpRequest, obj: Grant | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)  # revoke and grant again instead

    def get_fields(self, request: HttpRequest, obj: Grant | None = None) -> Any:
        if obj is None:
            return GrantForm.Meta.fields
        return ("id", "org", "resource_type", "resource_id", "action", "user", "group", "expires_at",
                "access_control", "created_by", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Grant | None = None) -> Any:
        return self.get_fields(request, obj) if obj is not None else self.readonly_fields

    def delete_model(self, request: HttpRequest, obj: Grant) -> None:
        self._run(request, services.revoke_permission, grant=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Grant]) -> None:
        for grant in queryset:
            self.delete_model(request, grant)


# --- policies --------------------------------------------------------------------------------------------


class PolicyForm(ServiceForm):
    document = forms.JSONField(help_text='{"policy": {"resource": "agent:*", "action": "use", "effect": "deny", '
                               '"conditions": [{"time.hour": {"<": 9}}]}}')
    error_prefixes = {"policy": "document"}

    class Meta:
        model = Policy
        fields = ("org", "name", "description", "document", "enabled")

    def call(self, context: RequestContext) -> Policy:
        data = self.cleaned_data
        if self.instance._state.adding:
            return services.create_policy(org=data["org"], name=data["name"], document=data["document"],
                                          description=data.get("description") or "", enabled=data["enabled"],
                                          context=context)
        fields = {k: data[k] for k in ("name", "description", "document", "enabled") if k in data}
        return services.update_policy(policy=Policy.objects.get(pk=self.instance.pk), context=context, **fields)


@admin.register(Policy)
class PolicyAdmin(ServiceFormAdmin):
    form = PolicyForm
    list_display = ("name", "org", "effect", "target", "enabled", "updated_at", "updated_by")
    list_filter = ("org", "enabled")
    search_fields = ("name", "=id", "description")
    list_select_related = ("org", "updated_by")
    readonly_fields = ("id", "created_at", "updated_at", "updated_by")
    actions = ["enable", "disable"]

    def get_readonly_fields(self, request: HttpRequest, obj: Policy | None = None) -> Any:
        return (*self.readonly_fields, "org") if obj is not None else self.readonly_fields

    @admin.display(description="Effect")
    def effect(self, obj: Policy) -> str:
        return str((obj.document or {}).get("policy", {}).get("effect", "—"))

    @admin.display(description="Applies to")
    def target(self, obj: Policy) -> str:
        body = (obj.document or {}).get("policy", {})
        return f"{body.get('action', '?')} on {body.get('resource', '?')}"

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Policy], enabled: bool) -> None:
        done = sum(self._run(request, services.update_policy, policy=p, enabled=enabled) for p in queryset)
        if done:
            self.message_user(request, f"{'Enabled' if enabled else 'Disabled'} {done} polic"
                              f"{'y' if done == 1 else 'ies'}.", messages.SUCCESS)

    @admin.action(description="Enable the selected policies", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Policy]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected policies", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Policy]) -> None:
        self._set_enabled(request, queryset, False)

    def delete_model(self, request: HttpRequest, obj: Policy) -> None:
        self._run(request, services.delete_policy, policy=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Policy]) -> None:
        for policy in queryset:
            self.delete_model(request, policy)


# --- separation of duties --------------------------------------------------------------------------------


class SodRuleForm(ServiceForm):
    class Meta:
        model = SodRule
        fields = ("org", "first", "second", "description")

    def call(self, context: RequestContext) -> SodRule:
        data = self.cleaned_data
        return services.add_sod_rule(org=data["org"], first=data["first"], second=data["second"],
                                     description=data.get("description") or "", context=context)


@admin.register(SodRule)
class SodRuleAdmin(ServiceFormAdmin):
    form = SodRuleForm
    list_display = ("__str__", "description", "org", "created_at")
    list_filter = ("org",)
    search_fields = ("first", "second", "description")
    list_select_related = ("org",)

    def has_change_permission(self, request: HttpRequest, obj: SodRule | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)  # remove and add again instead

    def get_fields(self, request: HttpRequest, obj: SodRule | None = None) -> Any:
        return SodRuleForm.Meta.fields if obj is None else (*SodRuleForm.Meta.fields, "created_at", "violators")

    def get_readonly_fields(self, request: HttpRequest, obj: SodRule | None = None) -> Any:
        return self.get_fields(request, obj) if obj is not None else ()

    @admin.display(description="Members who break it now")
    def violators(self, obj: SodRule) -> str:
        found = sod.violations(obj.org, [obj])
        return ", ".join(sod.email_of(m) for m in found[0][1]) if found else "none"

    def save_model(self, request: HttpRequest, obj: SodRule, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        breaking = getattr(form.result, "violators", None)
        if breaking:
            self.message_user(request, f"These members already hold both permissions and break the new rule: "
                              f"{', '.join(breaking)}. Revoke one of the two from each.", messages.WARNING)

    def delete_model(self, request: HttpRequest, obj: SodRule) -> None:
        self._run(request, services.remove_sod_rule, rule=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SodRule]) -> None:
        for rule in queryset:
            self.delete_model(request, rule)


# --- time windows on members and groups ------------------------------------------------------------------


class AccessControlFormMixin:
    """Validate ``access_control`` with :func:`services.normalize_window`; errors show at their paths."""

    cleaned_data: dict[str, Any]

    def clean_access_control(self) -> Any:
        errors: dict[str, list[str]] = {}
        window = services.normalize_window(self.cleaned_data.get("access_control"), errors)
        if errors:
            raise forms.ValidationError([f"{k.removeprefix('access_control.')}: {m}" if k != "access_control" else m
                                         for k, msgs in errors.items() for m in msgs])
        return window


def _save_window(admin_obj: Any, request: HttpRequest, obj: Any, form: Any) -> None:
    if obj.pk is not None and "access_control" in form.changed_data:
        target = type(obj).objects.get(pk=obj.pk)
        admin_obj._run(request, services.set_access_control, target=target,
                       document=form.cleaned_data.get("access_control"), context=_ctx(request))


class MembershipAdmin(orgs_admin.MembershipAdmin):
    list_display = (*orgs_admin.MembershipAdmin.list_display, "time_window")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (AccessControlFormMixin, form), {})

    @admin.display(description="Time window")
    def time_window(self, obj: Membership) -> str:
        return window_text(obj.access_control)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _save_window(self, request, obj, form)


class GroupAdmin(orgs_admin.GroupAdmin):
    list_display = (*orgs_admin.GroupAdmin.list_display, "time_window")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (AccessControlFormMixin, form), {})

    @admin.display(description="Time window")
    def time_window(self, obj: Group) -> str:
        return window_text(obj.access_control)

    def save_model(self, request: HttpRequest, obj: Group, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _save_window(self, request, obj, form)


for _model, _admin in ((Membership, MembershipAdmin), (Group, GroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
