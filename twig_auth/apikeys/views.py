"""Settings → API keys: list, generate, revoke, roll and usage pages. Thin: validate, call a service, render.

A new key's plaintext exists only in the POST response that created it (never in a URL, cookie, session or
log), and every page here is sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timesince import timesince
from django.utils.timezone import localtime
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods

from twig_auth.apikeys import services
from twig_auth.apikeys.forms import ApiKeyCreateForm, ApiKeyRollForm
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.queries import usage_summary, visible_keys
from twig_auth.apikeys.scopes import Scope
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, NotFound, PermissionDenied
from twig_auth.mfa.guard import require_step_up
from twig_auth.orgs.active import current_membership
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import Role

TEMPLATES = "twig_auth/apikeys/"


def _no_org(request: HttpRequest) -> HttpResponse:
    return render(request, TEMPLATES + "no_org.html", status=403)


def _get_key(request: HttpRequest, membership: Membership, key_pk: str) -> ApiKey:
    """Return the key ``key_pk`` of the active org if the member may manage it.

    Unknown, malformed and other organizations' ids are a 404 (the service refuses malformed ids before
    any query); :class:`PermissionDenied` propagates.
    """
    try:
        return services.get_manageable(org_id=membership.org_id, key_pk=key_pk,
                                       context=RequestContext.from_request(request))
    except NotFound as exc:
        raise Http404(exc.detail) from exc


def _render_list(request: HttpRequest, membership: Membership, form: ApiKeyCreateForm | None = None, *,
                 new_key: dict[str, Any] | None = None, status: int = 200) -> HttpResponse:
    now = clock.now()
    is_admin = membership.has_role(Role.ADMIN)
    rows = []
    for key in visible_keys(membership):
        creator = key.created_by.user if key.created_by else None
        rows.append({"key": key, "state": key.state(now), "creator": getattr(creator, "email", None),
                     "mine": key.created_by_id == membership.pk, "last_used": ago(key.last_used_at, now)})
    if form is not None and form.errors:
        form.focus_first_error()
    return render(request, TEMPLATES + "list.html", {
        "membership": membership, "is_admin": is_admin, "rows": rows, "new_key": new_key,
        "active_count": sum(1 for r in rows if r["state"] == "active"),
        "form": form or ApiKeyCreateForm(role=membership.role, enterprise=membership.org.is_enterprise),
    }, status=status)


def _denied(request: HttpRequest, membership: Membership, exc: PermissionDenied) -> HttpResponse:
    messages.error(request, exc.detail)
    return _render_list(request, membership, status=403)


@sensitive_variables("plaintext", "new_key")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        return _no_org(request)
    if request.method != "POST":
        return _render_list(request, membership)
    form = ApiKeyCreateForm(request.POST, role=membership.role, enterprise=membership.org.is_enterprise)
    if not form.is_valid():
        return _render_list(request, membership, form)
    data = dict(form.cleaned_data)
    allowed_ips = data.pop("allowed_ips", None)
    try:
        if Scope.ADMIN in data["scopes"]:
            # Refusals (bad values, a scope above the role) come at once; only a key that would be created
            # asks for a second factor.
            services.validate_request(creator=membership, **data)
            prompt = require_step_up(request, action="create an API key with the admin scope")
            if prompt is not None:
                return prompt
        key, plaintext = services.issue_api_key(creator=membership, context=RequestContext.from_request(request),
                                                allowed_ips=allowed_ips, **data)
    except InvalidInput as exc:
        form.add_service_errors(exc.errors)
        return _render_list(request, membership, form)
    except PermissionDenied as exc:
        fields: Any = exc.extra.get("fields") or ()
        form.add_error("scopes" if "scopes" in fields else None, exc.detail)
        return _render_list(request, membership, form, status=403)
    new_key = {"key": key, "plaintext": plaintext, "title": f"“{key.name}” was created"}
    return _render_list(request, membership, new_key=new_key)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def revoke(request: HttpRequest, key_pk: str) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        return _no_org(request)
    try:
        key = _get_key(request, membership, key_pk)
        if request.method == "POST":
            services.revoke_api_key(key=key, context=RequestContext.from_request(request))
            messages.success(request, f"“{key.name}” ({key.prefix}…) was revoked. It no longer works.")
            return HttpResponseRedirect(reverse("twig_auth:api_keys"))
    except PermissionDenied as exc:
        return _denied(request, membership, exc)
    now = clock.now()
    return render(request, TEMPLATES + "revoke.html", {"key": key, "state": key.state(now),
                                                       "last_used": ago(key.last_used_at, now)})


@sensitive_variables("plaintext", "new_key")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def roll(request: HttpRequest, key_pk: str) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        return _no_org(request)
    try:
        key = _get_key(request, membership, key_pk)
    except PermissionDenied as exc:
        return _denied(request, membership, exc)
    form = ApiKeyRollForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            new, plaintext = services.roll_api_key(key=key, expires_in=form.cleaned_data["expires_in"],
                                                   context=RequestContext.from_request(request))
        except InvalidInput as exc:
            for messages_ in exc.errors.values():
                for message in messages_:
                    form.add_error(None, message)
        except PermissionDenied as exc:
            return _denied(request, membership, exc)
        else:
            key.refresh_from_db()
            when = ("was revoked" if key.revoked_at else
                    f"keeps working until {date_format(localtime(key.expires_at), 'M j, Y, H:i')}")
            new_key = {"key": new, "plaintext": plaintext, "title": f"“{new.name}” was rolled",
                       "note": f"The old key {key.prefix}… {when}."}
            return _render_list(request, membership, new_key=new_key)
    return render(request, TEMPLATES + "roll.html", {"key": key, "form": form, "state": key.state(clock.now())})


@never_cache
@login_required
@require_GET
def usage(request: HttpRequest, key_pk: str) -> HttpResponse:
    membership = current_membership(request)
    if membership is None:
        return _no_org(request)
    try:
        key = _get_key(request, membership, key_pk)
    except PermissionDenied as exc:
        return _denied(request, membership, exc)
    summary = usage_summary(key)
    return render(request, TEMPLATES + "usage.html", {
        "key": key, "state": key.state(clock.now()), "summary": summary, "chart": bar_chart(summary["days"]),
        "creator": getattr(key.created_by.user, "email", None) if key.created_by else None,
    })


def ago(when: dt.datetime | None, now: dt.datetime) -> str:
    """Return "just now", "5 minutes ago"… for a past moment, or "Never"."""
    if when is None:
        return "Never"
    if now - when < dt.timedelta(minutes=1):
        return "just now"
    return f"{timesince(when, now)} ago"


def _nice_ceiling(value: int) -> int:
    """Return a round axis maximum ≥ ``value`` (1, 2, 5 × 10ⁿ)."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover


def bar_chart(days: list[dict[str, Any]], width: int = 600, height: int = 160) -> dict[str, Any]:
    """Lay out a bar chart of requests per day: SVG bars and grid lines, and axis labels placed in percent.

    The SVG stretches to its box (``preserveAspectRatio="none"``), so text lives outside it in HTML and
    never distorts; label positions are given as percentages of the plot.
    """
    top = 6
    plot_h = height - top
    peak = _nice_ceiling(max((d["count"] for d in days), default=0))
    slot = width / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        h = round(plot_h * day["count"] / peak, 1)
        if day["count"] and h < 2:
            h = 2  # a single request stays visible
        bars.append({"x": round(i * slot + slot * 0.15, 1), "w": round(slot * 0.7, 1),
                     "y": round(height - h, 1), "h": h, "day": day["day"], "count": day["count"]})
    grid = []
    for f in (0, 0.5, 1):
        y = round(height - plot_h * f, 1)
        grid.append({"y": y, "top": round(100 * y / height, 2), "label": round(peak * f)})
    labels = []
    for i in sorted({0, len(days) // 2, len(days) - 1}) if days else []:
        align = "start" if i == 0 else "end" if i == len(days) - 1 else "middle"
        labels.append({"left": round(100 * (i * slot + slot / 2) / width, 2), "day": days[i]["day"], "align": align})
    return {"width": width, "height": height, "bars": bars, "grid": grid, "labels": labels, "peak": peak,
            "max_count": max((d["count"] for d in days), default=0)}
