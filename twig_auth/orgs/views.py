"""Choose or switch the active organization; the org's security settings page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, PermissionDenied, SsoRequired
from twig_auth.mfa.guard import require_step_up
from twig_auth.mfa.middleware import mfa_exempt
from twig_auth.orgs import policy
from twig_auth.orgs.active import current_admin_membership, current_membership, memberships_of, switch_org
from twig_auth.orgs.services import update_org_settings
from twig_auth.passwords.views import safe_next
from twig_auth.usersessions.forms import SecuritySettingsForm, changed


@mfa_exempt  # a member blocked by one org's MFA policy may still switch to another org
@login_required
@require_http_methods(["GET", "POST"])
def choose_org(request: HttpRequest) -> HttpResponse:
    memberships = memberships_of(request.user)
    if request.method == "POST":
        try:
            membership = switch_org(request, request.POST.get("org", ""))
        except SsoRequired as exc:
            sso_url = exc.extra.get("sso_url")
            if isinstance(sso_url, str):
                return HttpResponseRedirect(sso_url)  # that org signs in with SSO: go and do so
            messages.error(request, exc.detail)
            return render(request, "twig_auth/orgs/choose.html",
                          {"memberships": memberships, "next": safe_next(request, "")}, status=403)
        except PermissionDenied as exc:
            messages.error(request, exc.detail)
            return render(request, "twig_auth/orgs/choose.html",
                          {"memberships": memberships, "next": safe_next(request, "")}, status=403)
        messages.success(request, f"You are now working in {membership.org.name}.")
        return HttpResponseRedirect(safe_next(request))
    return render(request, "twig_auth/orgs/choose.html", {
        "memberships": memberships, "current": current_membership(request), "next": safe_next(request, "")})


def save_settings(request: HttpRequest, org: Any, patch: dict[str, Any], *, action: str) -> HttpResponse | None:
    """Validate ``patch`` and save it, asking for a second factor first; return the step-up prompt when one
    is needed (the caller returns it), else None once saved. Wrong values raise :class:`InvalidInput` /
    :class:`PermissionDenied` before any prompt: only a change that would be saved asks for a code."""
    policy.validate_patch(patch, enterprise=org.is_enterprise)
    prompt = require_step_up(request, action=action)
    if prompt is not None:
        return prompt
    update_org_settings(org=org, patch=patch, context=RequestContext.from_request(request))
    return None


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def security_settings(request: HttpRequest) -> HttpResponse:
    """Settings → Security: the active org's session, lockout and MFA policies (admins and above)."""
    membership = current_admin_membership(request)
    if membership is None:
        return render(request, "twig_auth/usersessions/forbidden.html", {
            "message": "Only admins of the organization can change its security settings."}, status=403)
    org = membership.org
    current = policy.effective(org)
    if request.method != "POST":
        form = SecuritySettingsForm(initial=SecuritySettingsForm.initial_from(current))
        return render(request, "twig_auth/orgs/security.html", {"form": form, "membership": membership})
    form = SecuritySettingsForm(request.POST)
    status = 200
    if form.is_valid():
        patch = changed(form.document(), current)
        if not patch:
            messages.info(request, "Nothing changed.")
            return HttpResponseRedirect(reverse("twig_auth:security_settings"))
        try:
            prompt = save_settings(request, org, patch, action="change the organization's security settings")
            if prompt is not None:
                return prompt
        except InvalidInput as exc:
            form.add_service_errors(exc.errors)
        except PermissionDenied as exc:
            form.add_error(None, exc.detail)
            status = 403
        else:
            messages.success(request, f"Security settings of {org.name} were saved.")
            return HttpResponseRedirect(reverse("twig_auth:security_settings"))
    form.focus_first_error()
    return render(request, "twig_auth/orgs/security.html", {"form": form, "membership": membership}, status=status)
