"""The two pages that ask for a code: the step-up page (``/mfa/verify/?next=``) and the second step of sign-in
(``/login/verify/``). Both go through :func:`twig_auth.mfa.guard.try_second_factor`."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from twig_auth.mfa import devices, guard, pending, stepup
from twig_auth.mfa.forms import CodeForm
from twig_auth.mfa.middleware import mfa_exempt
from twig_auth.mfa.views import code_page
from twig_auth.orgs.models import Organization
from twig_auth.passwords.views import finish_login, safe_next


def _render_step_up(request: HttpRequest, next_url: str, attempt: guard.Attempt) -> HttpResponse:
    return guard.render_prompt(request, attempt, action="continue", replay=[("next", next_url)],
                               has_device=devices.has_mfa(request.user), code_field="code", sms_field="send_sms",
                               form_action=reverse("twig_auth:mfa_verify"))


@code_page
def verify(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request)
    if request.method != "POST":
        return _render_step_up(request, next_url, guard.Attempt())
    taken = guard.take_code_limit(request, request.user)
    if taken.status == 429:
        return _render_step_up(request, next_url, taken)
    send_sms = "send_sms" in request.POST
    form = CodeForm(request.POST)
    if not send_sms and not form.is_valid():
        return _render_step_up(request, next_url, guard.Attempt(error=form.errors["code"][0], status=400,
                                                                limit=taken.limit))
    attempt = guard.try_second_factor(request, request.user, code=form.cleaned_data.get("code") if not send_sms
                                      else None, send_sms=send_sms, purpose="step_up", taken=taken)
    if not attempt.method:
        return _render_step_up(request, next_url, attempt)
    stepup.mark_verified(request.session)
    return guard.with_throttle_headers(HttpResponseRedirect(next_url), attempt)


def _render_login(request: HttpRequest, user: Any, form: CodeForm, attempt: guard.Attempt) -> HttpResponse:
    phones = devices.sms_devices(user)
    if form.is_bound:  # never echo a code back into the page
        data = form.data.copy()
        data["code"] = ""
        form.data = data
    if attempt.error:
        form.add_error("code" if attempt.status == 400 else None, attempt.error)
    response = render(request, "twig_auth/mfa/login.html", {
        "form": form, "pending_email": getattr(user, "email", ""), "sms_device": phones[0] if phones else None,
        "has_totp": devices.has_totp(user), "notice": attempt.notice,
    }, status=attempt.status)
    return guard.with_throttle_headers(response, attempt)


@mfa_exempt
@sensitive_post_parameters("code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_verify(request: HttpRequest) -> HttpResponse:
    user = pending.pending_user(request.session)
    if user is None:
        pending.clear(request.session)
        messages.error(request, "Your sign-in expired, start again.")
        return HttpResponseRedirect(reverse("twig_auth:login"))
    if request.method != "POST":
        return _render_login(request, user, CodeForm(), guard.Attempt())
    taken = guard.take_code_limit(request, user)
    if taken.status == 429:
        return _render_login(request, user, CodeForm(), taken)
    send_sms = "send_sms" in request.POST
    form = CodeForm(request.POST if not send_sms else None)
    if not send_sms and not form.is_valid():
        return _render_login(request, user, form, guard.Attempt(status=400, limit=taken.limit))
    attempt = guard.try_second_factor(request, user, code=None if send_sms else form.cleaned_data["code"],
                                      send_sms=send_sms, purpose="login", taken=taken)
    if not attempt.method:
        return _render_login(request, user, form, attempt)
    data = pending.current(request.session) or {}
    sso = data.get("sso") or {}
    org = Organization.objects.filter(pk=sso["org"]).first() if sso.get("org") else None
    response = finish_login(request, user, mfa_method=attempt.method, next_url=data.get("next") or None,
                            org=org, login_details=sso.get("details") if org else None)
    return guard.with_throttle_headers(response, attempt)
