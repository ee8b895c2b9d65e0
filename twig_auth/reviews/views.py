"""Settings → Security → Access review (admins of the active org): every member's access on one page, a CSV
export (``?format=csv``), Deactivate / Reactivate, and the org's inactive-member policy. Thin: the rows come
from :mod:`twig_auth.reviews.report`, the writes from :mod:`twig_auth.orgs.services`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict, InvalidInput, PermissionDenied
from twig_auth.mfa.guard import require_step_up
from twig_auth.orgs.active import current_admin_membership
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import ROLE_RANK, Role
from twig_auth.orgs.services import deactivate_member, reactivate_member
from twig_auth.orgs.views import save_settings
from twig_auth.reviews import report
from twig_auth.reviews.services import deactivation_days

TEMPLATE = "twig_auth/reviews/access_review.html"
PAGE_SIZE = 50
MEMBER_ID_RE = re.compile(r"[0-9]{1,18}")
STATUSES = ("all", "active", "deactivated")


class InactivityPolicyForm(forms.Form):
    days = forms.IntegerField(
        label="Deactivate members inactive for (days)", required=False, min_value=0, max_value=3650,
        help_text="No sign-in, API-key use or token refresh for this many days. Leave empty or 0 to never "
                  "deactivate automatically. Super admins are never deactivated automatically.",
        error_messages={"invalid": "Enter a whole number of days.", "min_value": "Enter 0 or more days.",
                        "max_value": "Enter at most 3650 days."},
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": "1", "min": "0", "max": "3650"}))


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "twig_auth/usersessions/forbidden.html", {
        "message": "Only admins of the organization can review its members’ access."}, status=403)


def _filters(source: Any) -> dict[str, str]:
    """The list filters (email search, status, page) from a query or a POST, cleaned."""
    q = str(source.get("q", "") or "").replace("\x00", "").strip()[:100]  # PostgreSQL refuses NUL in text
    status = source.get("status", "all")
    page = str(source.get("page", "") or "")
    page = page if page.isascii() and page.isdigit() and len(page) <= 18 else ""
    return {k: v for k, v in (("q", q), ("status", status if status in STATUSES else "all"), ("page", page))
            if v and v != "all"}


def _here(filters: dict[str, str]) -> str:
    url = reverse("twig_auth:access_review")
    return f"{url}?{urlencode(filters)}" if filters else url


def _members(membership: Membership, filters: dict[str, str]) -> Any:
    members = report.members_of(membership.org)
    if filters.get("q"):
        field = get_user_model().get_email_field_name()
        members = members.filter(**{f"user__{field}__icontains": filters["q"]})
    if filters.get("status") == "active":
        members = members.filter(deactivated_at__isnull=True)
    elif filters.get("status") == "deactivated":
        members = members.filter(deactivated_at__isnull=False)
    return members


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def access_review(request: HttpRequest) -> HttpResponse:
    membership = current_admin_membership(request)
    if membership is None:
        return _forbidden(request)
    if request.method == "POST":
        return _post(request, membership)
    fmt = request.GET.get("format", "html")
    if fmt == "csv":
        return _csv(membership)
    filters = _filters(request.GET)
    form = InactivityPolicyForm(initial={"days": deactivation_days(membership.org) or None})
    return _page(request, membership, filters, form, status=200 if fmt == "html" else 400,
                 error="" if fmt == "html" else "Unknown format: use csv, or no format for this page.")


def _page(request: HttpRequest, membership: Membership, filters: dict[str, str], form: InactivityPolicyForm, *,
          status: int = 200, error: str = "") -> HttpResponse:
    org = membership.org
    page = Paginator(_members(membership, filters), PAGE_SIZE).get_page(filters.get("page"))
    rows = report.review(org, page.object_list)
    query = {k: v for k, v in filters.items() if k != "page"}
    manageable = {row.membership.pk for row in rows if _may_manage(membership, row.membership)}
    return render(request, TEMPLATE, {
        "membership": membership, "org": org, "tab": "review", "page": page, "rows": rows, "form": form,
        "manageable": manageable,
        "filters": filters, "query": urlencode(query), "csv_url": reverse("twig_auth:access_review") + "?format=csv",
        "limit_days": deactivation_days(org), "now": clock.now(), "error": error,
        "rotate_days": app_settings.ACCESS_REVIEW_KEY_ROTATE_DAYS,
        "unused_days": app_settings.ACCESS_REVIEW_KEY_UNUSED_DAYS,
    }, status=status)


def _may_manage(mine: Membership, member: Membership) -> bool:
    """Whether to offer Deactivate / Reactivate on ``member``'s row (the service decides either way)."""
    if member.user_id == mine.user_id:
        return False
    return ROLE_RANK[member.role] <= ROLE_RANK[mine.role] and (
        member.role != Role.SUPER_ADMIN or mine.role == Role.SUPER_ADMIN)


def _csv(membership: Membership) -> StreamingHttpResponse:
    org = membership.org
    rows = report.review(org, report.members_of(org))
    response = StreamingHttpResponse(report.csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="access-review-{org.slug}-{clock.now():%Y-%m-%d}.csv"'
    return response


def _post(request: HttpRequest, membership: Membership) -> HttpResponse:
    filters = _filters(request.POST)
    action = request.POST.get("action", "")
    if action == "policy":
        return _save_policy(request, membership, filters)
    if action not in ("deactivate", "reactivate"):
        messages.error(request, "Unknown action.")
        return _page(request, membership, filters, InactivityPolicyForm(
            initial={"days": deactivation_days(membership.org) or None}), status=400)
    raw = str(request.POST.get("member", ""))
    member = (Membership.objects.filter(org_id=membership.org_id, pk=int(raw)).select_related("user").first()
              if MEMBER_ID_RE.fullmatch(raw) else None)
    if member is None:
        messages.error(request, "That member is not in this organization (any more).")
        return HttpResponseRedirect(_here(filters))
    email = getattr(member.user, member.user.get_email_field_name(), "")
    context = RequestContext.from_request(request)
    try:
        if action == "deactivate":
            deactivate_member(membership=member, reason="manual", context=context)
            messages.success(request, f"{email} is deactivated in {membership.org.name}: their sessions, tokens "
                                      "and API keys no longer work here. Reactivate them to undo it.")
        else:
            prompt = require_step_up(request, action=f"reactivate {email}")
            if prompt is not None:
                return prompt
            reactivate_member(membership=member, context=context)
            messages.success(request, f"{email} is active again in {membership.org.name}. Their API keys work "
                                      "again; they sign in again for new sessions and tokens.")
    except (PermissionDenied, Conflict) as exc:
        messages.error(request, exc.detail)
    return HttpResponseRedirect(_here(filters))


def _save_policy(request: HttpRequest, membership: Membership, filters: dict[str, str]) -> HttpResponse:
    org = membership.org
    form = InactivityPolicyForm(request.POST)
    status = 400
    if form.is_valid():
        days = form.cleaned_data["days"] or None
        if days == (deactivation_days(org) or None):
            messages.info(request, "Nothing changed.")
            return HttpResponseRedirect(_here(filters))
        try:
            prompt = save_settings(request, org, {"accessReview": {"deactivateAfterDays": days}},
                                   action="change the inactive-member policy")
            if prompt is not None:
                return prompt
        except InvalidInput as exc:
            for problems in exc.errors.values():
                for problem in problems:
                    form.add_error("days", problem)
        except PermissionDenied as exc:
            form.add_error(None, exc.detail)
            status = 403
        else:
            messages.success(request, f"Members of {org.name} inactive for {days} days are now deactivated by "
                                      "the next twig_deactivate_inactive run." if days else
                             f"Members of {org.name} are no longer deactivated for inactivity.")
            return HttpResponseRedirect(_here(filters))
    form.fields["days"].widget.attrs["autofocus"] = True
    return _page(request, membership, filters, form, status=status)
