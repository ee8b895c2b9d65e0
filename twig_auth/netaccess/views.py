"""Settings → Security → IP Allowlist and Access Logs pages (admins of the active org). Thin: the list is saved
through :func:`twig_auth.orgs.services.update_org_settings`, so it is validated, audited
(``ORG_SETTINGS_CHANGED``) and written in one transaction like every other org setting. The access logs read the
org's audit events through :mod:`twig_auth.audit.export` (the filters and records of ``GET /api/audit-events``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from twig_auth.audit import export
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.http import client_ip
from twig_auth.exceptions import InvalidInput, PermissionDenied
from twig_auth.netaccess.allowlist import compile_allowlist
from twig_auth.netaccess.forms import CidrLinesField
from twig_auth.orgs import policy
from twig_auth.orgs.active import current_admin_membership
from twig_auth.orgs.views import save_settings

TEMPLATES = "twig_auth/netaccess/"
PAGE_SIZE = 50


class IpAllowlistForm(forms.Form):
    ranges = CidrLinesField(
        label="Allowed IP ranges",
        help_text="One IPv4 or IPv6 range per line, e.g. 203.0.113.0/24, 10.0.0.5/32 or 2001:db8::/64. A bare "
                  "address is one host. Text after # is a comment and is not saved. Leave empty to allow every "
                  "address.")

    def __init__(self, *args: Any, client: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def clean_ranges(self) -> list[str]:
        ranges: list[str] = self.cleaned_data["ranges"]
        if ranges and not compile_allowlist(ranges).allows(self.client):
            raise forms.ValidationError(
                f"Your current IP address {self.client} is not in this list: saving it would lock you out. Add a "
                "range that contains it (or save from a network the list allows).")
        return ranges


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "twig_auth/usersessions/forbidden.html", {"message": message}, status=403)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def ip_allowlist(request: HttpRequest) -> HttpResponse:
    """Edit the active org's ``ipAllowlist`` (enterprise), never excluding the saver's own address."""
    membership = current_admin_membership(request)
    if membership is None:
        return _forbidden(request, "Only admins of the organization can change its IP allowlist.")
    org = membership.org
    ip = client_ip(request)
    current = list(policy.effective(org).get("ipAllowlist") or [])
    context = {"membership": membership, "org": org, "client_ip": ip, "current": current, "tab": "ip"}
    if not org.is_enterprise:
        return render(request, TEMPLATES + "ip_allowlist.html", {**context, "form": None},
                      status=403 if request.method == "POST" else 200)
    if request.method != "POST":
        form = IpAllowlistForm(initial={"ranges": current}, client=ip)
        return render(request, TEMPLATES + "ip_allowlist.html", {**context, "form": form})
    form = IpAllowlistForm(request.POST, client=ip)
    status = 200
    if form.is_valid():
        ranges = form.cleaned_data["ranges"]
        if ranges == current:
            messages.info(request, "Nothing changed.")
            return HttpResponseRedirect(reverse("twig_auth:ip_allowlist"))
        patch = {"ipAllowlist": ranges}
        try:
            prompt = save_settings(request, org, patch, action="change the organization's IP allowlist")
            if prompt is not None:
                return prompt
        except InvalidInput as exc:
            for problems in exc.errors.values():
                for problem in problems:
                    form.add_error("ranges", problem)
        except PermissionDenied as exc:
            form.add_error(None, exc.detail)
            status = 403
        else:
            count = len(ranges)
            messages.success(request, f"The IP allowlist of {org.name} was saved: "
                             + (f"{count} range{'s' if count != 1 else ''}." if count else "every address is allowed."))
            return HttpResponseRedirect(reverse("twig_auth:ip_allowlist"))
    form.fields["ranges"].widget.attrs["autofocus"] = True
    return render(request, TEMPLATES + "ip_allowlist.html", {**context, "form": form}, status=status)


# --- access logs ----------------------------------------------------------------------------------------


class AccessLogFilterForm(forms.Form):
    """The Access logs filters; the names are those of ``GET /api/audit-events`` (``until`` is a day, included)."""

    event = forms.ChoiceField(label="Event", required=False,
                              choices=[("", "All events"), *((e.value, e.value) for e in Event)])
    user = forms.CharField(label="User", required=False, max_length=254, help_text="An email or a user id.",
                           widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}))
    ip = forms.CharField(label="IP address", required=False, max_length=64,
                         widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}))
    since = forms.DateField(label="From (UTC)", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To (UTC)", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def filter_params(self) -> dict[str, str]:
        """The cleaned filters as query parameters (empty ones left out)."""
        out = {}
        for name, value in self.cleaned_data.items():
            if value not in (None, ""):
                out[name] = value.isoformat() if hasattr(value, "isoformat") else str(value)
        return out


def _filtered(request: HttpRequest, org_id: Any) -> tuple[AccessLogFilterForm, dict[str, str], Any]:
    """The bound filter form, its query parameters, and the org's matching events (none while a filter is bad)."""
    form = AccessLogFilterForm(request.GET)
    if not form.is_valid():
        return form, {}, AuditEvent.objects.none()
    params = form.filter_params()
    try:
        filters = export.parse_filters(params, inclusive_until_date=True)
    except InvalidInput as exc:
        for name, problems in exc.errors.items():
            for problem in problems:
                form.add_error(name if name in form.fields else None, problem)
        return form, {}, AuditEvent.objects.none()
    return form, params, export.org_events(org_id, filters)


def summary(event: AuditEvent) -> str:
    """One line about an event's details for the table (the template escapes it)."""
    details = event.details or {}
    if event.event == Event.IP_BLOCKED:
        credential = {"api_key": "API key", "access_token": "Access token", "session": "Web session"}.get(
            str(details.get("credential")), str(details.get("credential") or "—"))
        if details.get("key_id"):
            credential += f" {details['key_id']}"
        if details.get("blocked_by") == "api_key":
            credential += " (key's own list)"
        return f"{credential} · {details.get('method', '')} {details.get('path', '')}".strip()
    parts = []
    for key, value in details.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
        parts.append(f"{key}: {text}")
    line = " · ".join(parts)
    return line if len(line) <= 300 else line[:299] + "…"


@never_cache
@login_required
@require_GET
def access_logs(request: HttpRequest) -> HttpResponse:
    """Every audit event of the active org, newest first, filtered, one keyset page at a time, with downloads."""
    membership = current_admin_membership(request)
    if membership is None:
        return _forbidden(request, "Only admins of the organization can see its access logs.")
    form, params, events = _filtered(request, membership.org_id)
    page_error = ""
    older = request.GET.get("cursor") or ""
    newer = request.GET.get("before") or ""
    try:
        if newer:
            rows, has_newer = export.page_before(events, newer, PAGE_SIZE)
            has_older = bool(rows) and export.older_than(events, rows[-1].timestamp, rows[-1].pk).exists()
        else:
            rows, next_cursor = export.page_after(events, older or None, PAGE_SIZE)
            has_older = next_cursor is not None
            has_newer = bool(older) and bool(rows) and export.newer_than(events, rows[0].timestamp,
                                                                         rows[0].pk).exists()
    except InvalidInput:
        page_error = "That page link is out of date; showing the newest events."
        rows, next_cursor = export.page_after(events, None, PAGE_SIZE)
        has_older, has_newer = next_cursor is not None, False
    query = urlencode(params)
    links = {
        "older": f"?{urlencode({**params, 'cursor': export.encode_cursor(rows[-1])})}" if has_older else "",
        "newer": f"?{urlencode({**params, 'before': export.encode_cursor(rows[0])})}" if has_newer else "",
        "newest": f"?{query}" if (older or newer) else "",
    }
    download = reverse("twig_auth:access_logs_download")
    return render(request, TEMPLATES + "access_logs.html", {
        "membership": membership, "org": membership.org, "form": form, "rows": [(e, summary(e)) for e in rows],
        "filtered": bool(params), "links": links, "page_error": page_error, "tab": "logs",
        "blocked_preset": f"?{urlencode({'event': Event.IP_BLOCKED})}",
        "preset": params.get("event", "") if set(params) <= {"event"} else "custom",
        "jsonl_url": f"{download}?{urlencode({**params, 'format': 'jsonl'})}",
        "csv_url": f"{download}?{urlencode({**params, 'format': 'csv'})}"})


@never_cache
@login_required
@require_GET
def access_logs_download(request: HttpRequest) -> HttpResponse:
    """Every matching event of the active org as JSON Lines (``format=jsonl``) or CSV (``format=csv``)."""
    membership = current_admin_membership(request)
    if membership is None:
        return _forbidden(request, "Only admins of the organization can download its access logs.")
    fmt = request.GET.get("format", "")
    form, _params, events = _filtered(request, membership.org_id)
    if fmt not in ("jsonl", "csv") or not form.is_valid() or form.errors:
        messages.error(request, "Choose JSON Lines or CSV, and correct the filters, to download the access logs.")
        return HttpResponseRedirect(reverse("twig_auth:access_logs"))
    org = membership.org
    response = StreamingHttpResponse(export.stream(events, fmt), content_type=export.MEDIA_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{export.filename(org, fmt, clock.now())}"'
    return response
