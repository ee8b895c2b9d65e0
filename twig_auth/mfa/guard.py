"""The step-up prompt for pages: call :func:`require_step_up` at the top of a sensitive action.

    response = require_step_up(request, action="create an admin API key")
    if response is not None:
        return response
    ... do the action ...

If a second factor was verified in the last ``MFA_STEP_UP_SECONDS``, it returns None and the action goes
on. Otherwise it returns a page asking for a code that re-posts the original form fields (as hidden inputs,
CSRF token renewed), so after the code the same POST arrives again, passes, and the action continues.
A user without any device is told to set one up first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.debug import sensitive_variables

from twig_auth.conf import app_settings
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import MfaRequired, MfaThrottled, SmsDeliveryFailed
from twig_auth.mfa import devices, services, stepup
from twig_auth.ratelimit import endpoints
from twig_auth.ratelimit.bucket import BucketResult

CODE_FIELD = "twig_step_up_code"
SMS_FIELD = "twig_step_up_send_sms"
SKIP_FIELDS = {"csrfmiddlewaretoken", CODE_FIELD, SMS_FIELD}
TEMPLATE = "twig_auth/mfa/step_up.html"


@dataclass(frozen=True)
class Attempt:
    """The outcome of one second-factor form post: verified (``method``), or what to tell the person."""

    method: str | None = None
    error: str = ""
    notice: str = ""
    status: int = 200
    retry_after: int = 0
    limit: BucketResult | None = None  # the code throttle's answer: its X-RateLimit-* headers go on the page


def take_code_limit(request: HttpRequest, user: Any) -> Attempt:
    """Take this POST from the second-factor buckets (per IP and per user); a 429 attempt when refused.

    Views call it first on every POST of a code form, before validating the code, so malformed posts
    count too, and hand the result to :func:`try_second_factor` (``taken``).
    """
    limit = endpoints.check_code(request, user.pk)
    if limit.allowed:
        return Attempt(limit=limit)
    return Attempt(error=endpoints.refused_message(endpoints.MFA, limit), status=429,
                   retry_after=limit.retry_after, limit=limit)


@sensitive_variables("code")
def try_second_factor(request: HttpRequest, user: Any, *, code: str | None, send_sms: bool,
                      purpose: str, taken: Attempt | None = None) -> Attempt:
    """Text the user a code (``send_sms``) or verify ``code`` for ``purpose``; throttled per IP and per user.

    ``taken`` is the result of :func:`take_code_limit` when the view already took this POST's token.
    """
    taken = taken or take_code_limit(request, user)
    if taken.status == 429:
        return taken
    return replace(_second_factor(request, user, code=code, send_sms=send_sms, purpose=purpose), limit=taken.limit)


@sensitive_variables("code")
def _second_factor(request: HttpRequest, user: Any, *, code: str | None, send_sms: bool, purpose: str) -> Attempt:
    try:
        if send_sms:
            device = services.send_login_sms(user=user)
            minutes = max(1, app_settings.MFA_SMS_CODE_SECONDS // 60)
            return Attempt(notice=f"We sent a code to {device.masked_number}. It works for {minutes} minutes."
                           if device else "")
        return Attempt(method=services.verify(user=user, code=code or "", purpose=purpose,
                                              context=RequestContext.from_request(request)))
    except MfaRequired as exc:
        return Attempt(error=exc.detail, status=400)
    except MfaThrottled as exc:
        return Attempt(error=exc.detail, status=429, retry_after=exc.retry_after)
    except SmsDeliveryFailed as exc:
        return Attempt(error=exc.detail, status=503)


def with_throttle_headers(response: HttpResponse, attempt: Attempt) -> HttpResponse:
    """Put the code throttle's ``X-RateLimit-*`` headers on the page, and ``Retry-After`` on a 429."""
    endpoints.apply_headers(response, attempt.limit)
    if attempt.status == 429:
        response["Retry-After"] = str(max(1, attempt.retry_after))
    return response


def require_step_up(request: HttpRequest, *, action: str) -> HttpResponse | None:
    """Return None when ``request.user`` may do ``action`` now; else the prompt page to return instead."""
    if stepup.is_fresh(request.session):
        return None
    user = request.user
    attempt = Attempt()
    has_device = devices.has_mfa(user)
    if has_device and request.method == "POST" and (CODE_FIELD in request.POST or SMS_FIELD in request.POST):
        attempt = try_second_factor(request, user, code=request.POST.get(CODE_FIELD),
                                    send_sms=SMS_FIELD in request.POST, purpose="step_up")
        if attempt.method:
            stepup.mark_verified(request.session)
            return None
    replay = [(name, value) for name, values in request.POST.lists() if name not in SKIP_FIELDS
              for value in values] if request.method == "POST" else []
    return render_prompt(request, attempt, action=action, replay=replay, has_device=has_device)


def render_prompt(request: HttpRequest, attempt: Attempt, *, action: str, replay: list[tuple[str, str]],
                  has_device: bool, code_field: str = CODE_FIELD, sms_field: str = SMS_FIELD,
                  form_action: str | None = None) -> HttpResponse:
    """The page that asks for a code (403 telling the user to set one up when they have no device)."""
    response = render(request, TEMPLATE, {
        "action": action, "error": attempt.error, "notice": attempt.notice, "has_device": has_device,
        "sms_devices": devices.sms_devices(request.user) if has_device else [], "replay": replay,
        "code_field": code_field, "sms_field": sms_field, "form_action": form_action or request.get_full_path(),
        "minutes": max(1, app_settings.MFA_STEP_UP_SECONDS // 60),
    }, status=attempt.status if has_device else 403)
    return with_throttle_headers(response, attempt)


def step_up_context(request: HttpRequest) -> dict[str, Any]:
    """Template context for pages that show how long the current step-up lasts."""
    return {"step_up_seconds_left": stepup.seconds_left(request.session)}
