"""Forms of the Access pages (grants, time windows, separation of duties, policies, try it).

They shape input only: choices come from the org and the resource registry, and the authz services decide
what is allowed. Service errors (``InvalidInput`` paths such as ``accessControl.allowedHours.end`` or
``policy.conditions.2.time.hour``) are attached to the field they are about.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.utils import timezone

from twig_auth.authz import registry
from twig_auth.authz.decisions import GRANT_ONLY_ACTIONS
from twig_auth.orgs.models import Group, Membership, Organization

MAX_CHOICES = 500  # resources per type in a chooser
DAY_CHOICES = [(str(d), name) for d, name in enumerate(
    ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), start=1)]
ALL_DAYS = [value for value, _ in DAY_CHOICES]
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
EXAMPLE_POLICY = {"policy": {
    "resource": "agent:*", "action": "use", "effect": "allow",
    "conditions": [{"user.department": "support"}, {"time.hour": {">=": 9, "<": 17}}, {"time.weekday": {"<=": 5}}],
}}
Choices = list[tuple[str, Any]]


def type_label(name: str, *, plural: bool = False) -> str:
    """``"data_source"`` -> ``"Data source"`` (``"Data sources"``)."""
    label = name.replace("_", " ").capitalize()
    return label + "s" if plural else label


@cache
def timezone_choices() -> tuple[tuple[str, str], ...]:
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    return (("UTC", "UTC"), *((z, z.replace("_", " ")) for z in zones))


def action_label(rtype: registry.ResourceType, action: str) -> str:
    """``"edit (includes use, view)"``; ``"deploy (grant only)"`` for an action nothing else implies."""
    lower = [a for a in rtype.actions if a != action and a in rtype.closure.get(action, ())]
    if lower:
        return f"{action} (includes {', '.join(lower)})"
    return f"{action} (grant only)" if action in GRANT_ONLY_ACTIONS else action


def action_choices() -> Choices:
    """Actions grouped by resource type; values are ``"type:action"``."""
    return [(type_label(t.name, plural=True), [(f"{t.name}:{a}", action_label(t, a)) for a in t.actions])
            for t in registry.all_types().values()]


def permission_choices() -> Choices:
    """Every ``"type:action"`` permission, grouped by type (the separation-of-duties chooser)."""
    return [(type_label(t.name, plural=True), [(f"{t.name}:{a}", f"{t.name}:{a}") for a in t.actions])
            for t in registry.all_types().values()]


def org_resources(org: Organization, rtype: registry.ResourceType) -> list[Any]:
    """The org's resources of one type (the first ``MAX_CHOICES``), or none when the model is not installed."""
    try:
        model = rtype.model
    except LookupError:
        return []
    order = "name" if any(f.name == "name" for f in model._meta.get_fields()) else "pk"
    return list(model._default_manager.filter(**{rtype.org_field: org}).order_by(order)[:MAX_CHOICES])


def resource_name(obj: Any) -> str:
    return str(getattr(obj, "name", None) or obj)


def resource_choices(org: Organization, *, wildcard: bool) -> Choices:
    """The org's resources grouped by type; values are ``"type:id"`` (``"type:*"``: all of the type)."""
    out: Choices = []
    for t in registry.all_types().values():
        options = [(f"{t.name}:*", f"All {type_label(t.name, plural=True).lower()}")] if wildcard else []
        options += [(f"{t.name}:{obj.pk}", resource_name(obj)) for obj in org_resources(org, t)]
        if options:
            out.append((type_label(t.name, plural=True), options))
    return out


def member_choices(org: Organization) -> Choices:
    members = Membership.objects.filter(org=org).select_related("user").order_by("user__email")
    return [(str(m.pk), f"{m.user.email} ({m.get_role_display().lower()})") for m in members]


def add_errors(form: forms.Form, errors: dict[str, list[str]], fields: dict[str, str]) -> None:
    """Attach service ``errors`` to ``form``: a path goes to the field of its longest matching entry in
    ``fields`` (path prefix -> field name); the rest become form errors."""
    for path, messages in errors.items():
        target = None
        for prefix in sorted(fields, key=len, reverse=True):
            if path == prefix or path.startswith(prefix + ".") or path.endswith("." + prefix):
                target = fields[prefix]
                break
        for message in messages:
            form.add_error(target if target in form.fields else None, message)


class FocusMixin:
    def focus_first_error(self) -> None:
        """Autofocus the first invalid field, so the browser scrolls the errors into view after a POST."""
        for name, field in self.fields.items():  # type: ignore[attr-defined]
            if name in self.errors:  # type: ignore[attr-defined]
                field.widget.attrs["autofocus"] = True
                return


class TimeWindowForm(FocusMixin, forms.Form):
    """An optional time window (``accessControl``): hours, time zone and ISO weekdays."""

    window_start = forms.TypedChoiceField(
        label="From", required=False, coerce=int, empty_value=None,
        choices=[("", "Any time")] + [(str(h), f"{h:02d}:00") for h in range(24)])
    window_end = forms.TypedChoiceField(
        label="Until", required=False, coerce=int, empty_value=None,
        choices=[("", "—")] + [(str(h), f"{h:02d}:00" if h < 24 else "24:00 (midnight)") for h in range(1, 25)],
        help_text="The end hour is not included: 9 to 17 allows 09:00 to 16:59.")
    window_timezone = forms.ChoiceField(label="Time zone", choices=())
    window_days = forms.MultipleChoiceField(label="Days", choices=DAY_CHOICES, required=False,
                                            widget=forms.CheckboxSelectMultiple, initial=ALL_DAYS)

    WINDOW_ERRORS = {"allowedHours.start": "window_start", "allowedHours.end": "window_end",
                     "allowedHours.timezone": "window_timezone", "timezone": "window_timezone",
                     "allowedHours": "window_start", "allowedDays": "window_days", "accessControl": "window_start",
                     "access_control": "window_start"}

    def __init__(self, *args: Any, tz: str = "UTC", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        zones = list(timezone_choices())
        known = {z for z, _ in zones}
        for extra in (tz, self.initial.get("window_timezone")):  # a stored zone outside the list stays choosable
            if extra and extra not in known:
                zones.append((extra, extra))
                known.add(extra)
        self.fields["window_timezone"].choices = zones
        self.fields["window_timezone"].initial = tz

    @classmethod
    def initial_from(cls, document: dict[str, Any] | None, tz: str) -> dict[str, Any]:
        """The window fields' initial values for a stored ``access_control`` (wrapped or not)."""
        body = (document or {}).get("accessControl", document or {})
        hours = body.get("allowedHours") or {}
        days = body.get("allowedDays")
        start, end = hours.get("start"), hours.get("end")
        all_day = start is None or start == end or (start, end) == (0, 24)
        return {"window_start": None if all_day else start, "window_end": None if all_day else end,
                "window_timezone": hours.get("timezone", tz),
                "window_days": [str(d) for d in days] if days else ALL_DAYS}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("window_start"), data.get("window_end")
        if start is not None and end is None:
            self.add_error("window_end", "Choose when the window ends.")
        elif end is not None and start is None:
            self.add_error("window_start", "Choose when the window starts.")
        elif start is not None and start == end:
            self.add_error("window_end", "Choose an end different from the start (or “Any time” for all day).")
        if "window_days" in data and not data["window_days"]:
            self.add_error("window_days", "Choose at least one day.")
        return data

    def access_control(self) -> dict[str, Any] | None:
        """The cleaned window as ``{"accessControl": …}``, or None when it restricts nothing."""
        d = self.cleaned_data
        days = sorted({int(x) for x in d.get("window_days") or ALL_DAYS})
        start, end = d.get("window_start"), d.get("window_end")
        if start is None and len(days) == 7:
            return None
        body: dict[str, Any] = {"allowedHours": {"start": start if start is not None else 0,
                                                 "end": end if end is not None else 24,
                                                 "timezone": d.get("window_timezone") or self.tz}}
        if len(days) < 7:
            body["allowedDays"] = days
        return {"accessControl": body}

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        add_errors(self, errors, self.WINDOW_ERRORS)


class GrantForm(TimeWindowForm):
    """Give a member or a group one action on one resource (or every resource of its type)."""

    field_order = ["grantee", "resource_type", "resource", "action", "expires_at"]

    grantee = forms.ChoiceField(label="Grant to", error_messages={"required": "Choose a member or a group."})
    resource_type = forms.ChoiceField(label="Resource type", required=False)
    resource = forms.ChoiceField(label="Resource", error_messages={"required": "Choose a resource."})
    action = forms.ChoiceField(label="Action", error_messages={"required": "Choose an action."})
    expires_at = forms.DateTimeField(
        label="Expires (optional)", required=False, input_formats=DATETIME_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))

    SERVICE_ERRORS = {**TimeWindowForm.WINDOW_ERRORS, "user": "grantee", "group": "grantee", "grantee": "grantee",
                      "resource_type": "resource_type", "resource_id": "resource", "resource": "resource",
                      "action": "action", "expires_at": "expires_at"}

    def __init__(self, *args: Any, org: Organization, tz: str = "UTC", **kwargs: Any) -> None:
        super().__init__(*args, tz=tz, **kwargs)
        self.org = org
        groups = [(f"group:{g.pk}", g.name) for g in Group.objects.filter(org=org).order_by("name")]
        members = [(f"member:{pk}", label) for pk, label in member_choices(org)]
        self.fields["grantee"].choices = [("", "Choose a member or a group…"), ("Members", members)] + (
            [("Groups", groups)] if groups else [])
        self.fields["resource_type"].choices = [("", "Any type"), *((t.name, type_label(t.name))
                                                                  for t in registry.all_types().values())]
        self.fields["resource"].choices = [("", "Choose a resource…"), *resource_choices(org, wildcard=True)]
        self.fields["action"].choices = [("", "Choose an action…"), *action_choices()]
        self.fields["expires_at"].help_text = f"Leave empty for a grant that does not expire. Time zone: {tz}."
        self.fields["expires_at"].widget.attrs["min"] = timezone.localtime(timezone=ZoneInfo(tz)).strftime(
            "%Y-%m-%dT%H:%M")

    def full_clean(self) -> None:
        with timezone.override(ZoneInfo(self.tz)):  # the expiry is typed in the org's time zone
            super().full_clean()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        rtype = data.get("resource_type") or (data.get("resource") or "").partition(":")[0]
        data["resource_type"] = rtype  # "Any type" only filters the choosers: the resource says which
        for name, what in (("resource", "resource"), ("action", "action")):
            value = data.get(name)
            if rtype and value and value.partition(":")[0] != rtype:
                self.add_error(name, f"Choose {'an' if what == 'action' else 'a'} {what} of the type "
                                     f"“{type_label(rtype).lower()}”.")
        return data

    def service_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``grant_permission`` (besides ``org`` and ``context``)."""
        d = self.cleaned_data
        kind, _, pk = d["grantee"].partition(":")
        rtype, _, rid = d["resource"].partition(":")
        out: dict[str, Any] = {"resource_type": rtype, "resource_id": rid, "action": d["action"].partition(":")[2],
                               "expires_at": d.get("expires_at"), "access_control": self.access_control()}
        if kind == "group":
            out["group"] = Group.objects.filter(org=self.org, pk=int(pk)).first() if pk.isdigit() else None
        else:
            member = (Membership.objects.filter(org=self.org, pk=int(pk)).select_related("user").first()
                      if pk.isdigit() else None)
            out["user"] = member.user if member else None
        return out

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        add_errors(self, errors, self.SERVICE_ERRORS)


class SodRuleForm(FocusMixin, forms.Form):
    first = forms.ChoiceField(label="A member who holds")
    second = forms.ChoiceField(label="may not also hold")
    description = forms.CharField(label="Why (optional)", max_length=300, required=False,
                                  widget=forms.TextInput(attrs={"placeholder": "e.g. Authors may not approve"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="id_sod_%s", **kwargs)
        choices = [("", "Choose a permission…"), *permission_choices()]
        self.fields["first"].choices = choices
        self.fields["second"].choices = choices

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("first") and data.get("first") == data.get("second"):
            self.add_error("second", "Choose a permission different from the first one.")
        return data

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        add_errors(self, errors, {"first": "first", "second": "second", "description": "description"})


class PolicyForm(FocusMixin, forms.Form):
    """A policy's name, description, state and JSON document (validated by the services, not here)."""

    name = forms.CharField(max_length=100, help_text="Unique in the organization, e.g. “Support: business hours”.")
    description = forms.CharField(label="Description (optional)", max_length=500, required=False)
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True,
                                 help_text="A disabled policy is kept but never applies.")
    document = forms.CharField(
        label="Policy (JSON)", max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "autocapitalize": "off",
                                     "autocomplete": "off", "class": "code-editor"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.document_errors: list[tuple[str, str]] = []  # (path, message) from the services
        if not self.is_bound and not self.initial.get("document"):
            self.initial["document"] = pretty(EXAMPLE_POLICY)

    def clean_document(self) -> Any:
        text = self.cleaned_data["document"]
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Name and description errors go to their fields; errors inside the document are listed under the
        editor with their paths (``policy.conditions.2.time.hour: Must be …``)."""
        for path, messages in errors.items():
            if path in ("name", "description", "enabled"):
                for message in messages:
                    self.add_error(path, message)
                continue
            shown = "" if path in ("document", "non_field_errors", "__all__") else path
            self.document_errors += [(shown, m) for m in messages]
        if len(self.document_errors) == 1 and not self.document_errors[0][0]:
            self.add_error("document", self.document_errors.pop()[1])
        elif self.document_errors:
            n = len(self.document_errors)
            self.add_error("document", "The policy has a problem, shown below the editor." if n == 1 else
                           f"The policy has {n} problems, listed below the editor.")


class TryForm(FocusMixin, forms.Form):
    """Who, what, which resource and when: the question the explain page answers."""

    member = forms.ChoiceField(label="Member", error_messages={"required": "Choose a member."})
    action = forms.ChoiceField(label="Action", error_messages={"required": "Choose an action."})
    resource = forms.ChoiceField(label="Resource", error_messages={"required": "Choose a resource."})
    at = forms.DateTimeField(label="At (optional)", required=False, input_formats=DATETIME_FORMATS,
                             widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    ip = forms.GenericIPAddressField(label="Request IP (optional)", required=False,
                                     help_text="For policies on request.ip.",
                                     widget=forms.TextInput(attrs={"placeholder": "e.g. 10.0.0.5",
                                                                   "spellcheck": "false"}))
    mfa = forms.BooleanField(label="Signed in with a second factor", required=False,
                             help_text="For policies on request.mfa.")

    def __init__(self, *args: Any, org: Organization, tz: str = "UTC", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.fields["member"].choices = [("", "Choose a member…"), *member_choices(org)]
        self.fields["action"].choices = [("", "Choose an action…"), *action_choices()]
        self.fields["resource"].choices = [("", "Choose a resource…"), *resource_choices(org, wildcard=False)]
        self.fields["at"].help_text = f"Leave empty for now. Time zone: {tz}."

    def full_clean(self) -> None:
        with timezone.override(ZoneInfo(self.tz)):
            super().full_clean()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        resource, action = data.get("resource"), data.get("action")
        if resource and action and resource.partition(":")[0] != action.partition(":")[0]:
            rtype = resource.partition(":")[0]
            self.add_error("action", f"Choose an action of {type_label(rtype, plural=True).lower()}: the resource "
                                     f"is {'an' if rtype[0] in 'aeiou' else 'a'} {type_label(rtype).lower()}.")
        return data

    @property
    def at_utc(self) -> dt.datetime | None:
        at = self.cleaned_data.get("at")
        return at.astimezone(dt.UTC) if at else None


def pretty(document: Any) -> str:
    """A policy document as the editor shows it: indented, one condition per line."""
    body = document.get("policy") if isinstance(document, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("conditions"), list):
        return json.dumps(document, indent=2, ensure_ascii=False)
    lines = ['{"policy": {']
    items = [(k, v) for k, v in body.items() if k != "conditions"]
    for key, value in items:
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    conditions = [json.dumps(c, ensure_ascii=False) for c in body["conditions"]]
    if conditions:
        lines.append('  "conditions": [')
        lines += [f"    {c}{',' if i < len(conditions) - 1 else ''}" for i, c in enumerate(conditions)]
        lines.append("  ]")
    else:
        lines.append('  "conditions": []')
    lines.append("}}")
    return "\n".join(lines)


def days_text(days: Iterable[int]) -> str:
    """``[1, 2, 3, 4, 5]`` -> ``"Mon–Fri"``; ``[1, 3]`` -> ``"Mon, Wed"``."""
    names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    ds = sorted(set(days))
    runs: list[list[int]] = []
    for d in ds:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(names[r[0] - 1] if len(r) == 1 else
                     f"{names[r[0] - 1]}, {names[r[-1] - 1]}" if len(r) == 2 else
                     f"{names[r[0] - 1]}–{names[r[-1] - 1]}" for r in runs)


def window_text(document: dict[str, Any] | None, tz: str) -> str:
    """A stored window in words: ``"Mon–Fri, 09:00–17:00 (America/New_York)"``; ``""`` for none."""
    if not document:
        return ""
    body = document.get("accessControl", document)
    if not isinstance(body, dict) or not body:
        return ""
    hours = body.get("allowedHours") or {}
    days = body.get("allowedDays")
    start, end = hours.get("start"), hours.get("end")
    parts = []
    if days and len(set(days)) < 7:
        parts.append(days_text(days))
    if start is not None and end is not None and start != end and (start, end) != (0, 24):
        parts.append(f"{start:02d}:00–{end:02d}:00")
    if not parts:
        return ""
    return f"{', '.join(parts)} ({hours.get('timezone', tz)})"
