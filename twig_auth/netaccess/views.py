"""Settings → Security → IP Allowlist and Access Logs pages (admins of the active org). Thin: the list is saved
through :func:`twig_auth.orgs.services.update_org_settings`, so it is validated, audited
(``ORG_SETTINGS_CHANGED``) and written in one transaction like every other org setting."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.core.http import client_ip
from twig_auth.exceptions import InvalidInput, PermissionDenied
from twig_auth.netaccess.allowlist import compile_allowlist, normalize_ip
from twig_auth.netaccess.forms import CidrLinesField
from twig_auth.orgs import policy
from twig_auth.orgs.active import current_membership
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import Role
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


def _admin_membership(request: HttpRequest) -> Membership | None:
    membership = current_membership(request)
    return membership if membership is not None and membership.has_role(Role.ADMIN) else None


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "twig_auth/usersessions/forbidden.html", {"message": message}, status=403)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def ip_allowlist(request: HttpRequest) -> HttpResponse:
    """Edit the active org's ``ipAllowlist`` (enterprise), never excluding the saver's own address."""
    membership = _admin_membership(request)
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


@never_cache
@login_required
@require_GET
def access_logs(request: HttpRequest) -> HttpResponse:
    """Requests refused by an IP allowlist (``IP_BLOCKED`` events of the active org), newest first."""
    membership = _admin_membership(request)
    if membership is None:
        return _forbidden(request, "Only admins of the organization can see its access logs.")
    events = AuditEvent.objects.filter(org_id=membership.org_id, event=Event.IP_BLOCKED).order_by("-timestamp", "-id")
    raw_ip = (request.GET.get("ip") or "").strip()[:64]
    ip_filter = normalize_ip(raw_ip) if raw_ip else None
    ip_error = "Enter a single IPv4 or IPv6 address." if raw_ip and ip_filter is None else ""
    if ip_filter:
        events = events.filter(ip_address=ip_filter)
    elif ip_error:
        events = events.none()
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, TEMPLATES + "access_logs.html", {
        "membership": membership, "org": membership.org, "page": page, "ip": raw_ip, "ip_error": ip_error,
        "tab": "logs"})
