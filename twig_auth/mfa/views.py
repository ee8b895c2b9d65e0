"""Settings → Two-factor authentication, enrollment, recovery codes, removal, the step-up page and the second
step of sign-in. Thin: validate with a form, call one service, render.

Recovery codes exist in clear only in the response that shows them (never in the session, a URL or a log),
and every page here is sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.timesince import timesince
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import (
    InvalidInput,
    MfaThrottled,
    NotFound,
    PermissionDenied,
    SmsDeliveryFailed,
)
from twig_auth.mfa import devices, enforcement, guard, recovery, services, stepup, totp
from twig_auth.mfa.forms import PhoneForm, ResendForm, SmsConfirmForm, TotpConfirmForm
from twig_auth.mfa.middleware import mfa_exempt
from twig_auth.mfa.models import SmsDevice
from twig_auth.orgs.active import current_membership
from twig_auth.passwords.views import safe_next

T = "twig_auth/mfa/"
SESSION_TOTP = "twig_mfa_setup_totp"
SESSION_SMS = "twig_mfa_setup_sms"


def code_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A signed-in page that takes a code by POST: open to members blocked by the MFA policy (it is how
    they get unblocked), never cached, the code kept out of error reports."""
    for decorate in (require_http_methods(["GET", "POST"]), login_required, never_cache,
                     sensitive_post_parameters("code"), mfa_exempt):
        view = decorate(view)
    return view


# --- helpers --------------------------------------------------------------------------------------------


_NOWHERE = "\x00"


def _next(request: HttpRequest) -> str:
    """The same-site page to return to after enrollment (``?next=``), or "" when none (or an unsafe one) was given."""
    target = safe_next(request, default=_NOWHERE)
    return "" if target == _NOWHERE else target


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def _overview(request: HttpRequest) -> str:
    return _with_next(reverse("twig_auth:mfa"), _next(request))


def _ago(when: dt.datetime | None) -> str:
    """Return "just now", "5 minutes ago"… or "never"."""
    if when is None:
        return "never"
    now = clock.now()
    return "just now" if now - when < dt.timedelta(minutes=1) else f"{timesince(when, now)} ago"


def _context(request: HttpRequest) -> RequestContext:
    return RequestContext.from_request(request)


def _throttled(response: HttpResponse, retry_after: int) -> HttpResponse:
    response["Retry-After"] = str(max(1, int(retry_after)))
    return response


@sensitive_variables("codes")
def _enrolled(request: HttpRequest, codes: list[str] | None, what: str) -> HttpResponse:
    """After a device is confirmed: the user just proved possession, so the session is stepped up; show the
    new recovery codes once, or go back where the user came from."""
    stepup.mark_verified(request.session)
    request.session.pop(SESSION_TOTP, None)
    request.session.pop(SESSION_SMS, None)
    next_url = _next(request)
    if codes:
        return _show_codes(request, codes, title=f"{what} is set up", next_url=next_url)
    messages.success(request, f"{what} is set up. You can use it the next time you sign in.")
    return HttpResponseRedirect(next_url or reverse("twig_auth:mfa"))


@sensitive_variables("codes")
def _show_codes(request: HttpRequest, codes: list[str], *, title: str, next_url: str = "") -> HttpResponse:
    return render(request, T + "recovery_codes.html", {
        "title": title, "codes": codes, "codes_text": _codes_text(request, codes),
        "continue_url": next_url or reverse("twig_auth:mfa"), "continue_label":
            "Continue" if next_url else "Done, back to two-factor settings",
    })


def _codes_text(request: HttpRequest, codes: list[str]) -> str:
    account = getattr(request.user, "email", "")
    lines = [f"{app_settings.MFA_TOTP_ISSUER} recovery codes for {account}", "",
             "Each code works once. Keep them somewhere safe, away from your phone.", "", *codes, ""]
    return "\n".join(lines)


# --- overview ---------------------------------------------------------------------------------------------


@mfa_exempt
@never_cache
@login_required
@require_http_methods(["GET"])
def overview(request: HttpRequest) -> HttpResponse:
    user = request.user
    membership = current_membership(request)
    rows = devices.confirmed_devices(user)
    return render(request, T + "overview.html", {
        "membership": membership, "status": enforcement.status(membership) if membership else None,
        "devices": [{"info": d, "last_used": _ago(d.last_used_at)} for d in rows],
        "recovery_left": recovery.remaining(user) if rows else 0,
        "recovery_total": app_settings.MFA_RECOVERY_CODE_COUNT,
        "next": _next(request), "step_up_minutes": max(1, app_settings.MFA_STEP_UP_SECONDS // 60),
    })


# --- authenticator app ------------------------------------------------------------------------------------


def _totp_device(request: HttpRequest) -> TOTPDevice:
    """The unconfirmed device of this setup: the one remembered in the session, or a new one."""
    device_id = request.session.get(SESSION_TOTP)
    device = TOTPDevice.objects.filter(pk=device_id, user=request.user, confirmed=False).first() \
        if isinstance(device_id, int) else None
    if device is None:
        device = services.start_totp(user=request.user)
        request.session[SESSION_TOTP] = device.pk
    return device


@sensitive_variables("secret")
def _render_totp(request: HttpRequest, form: TotpConfirmForm | None, status: int = 200) -> HttpResponse:
    device = _totp_device(request)
    secret = totp.secret_b32(device)
    if form is None:
        form = TotpConfirmForm(initial={"device": device.pk})
    elif form.is_bound:
        # Re-rendered after an error: the hidden id must name the device whose QR code is shown.
        data = form.data.copy()
        data["device"] = str(device.pk)
        data["code"] = ""
        form.data = data
        form.fields["code"].widget.attrs["autofocus"] = True
    email = getattr(request.user, "email", "") or str(request.user)
    return render(request, T + "totp.html", {
        "form": form, "device": device, "qr_svg": totp.qr_svg(totp.provisioning_uri(device, email)),
        "secret": secret, "secret_groups": [secret[i:i + 4] for i in range(0, len(secret), 4)],
        "account": email, "issuer": app_settings.MFA_TOTP_ISSUER, "next": _next(request),
    }, status=status)


@code_page
def totp_setup(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _render_totp(request, None)
    form = TotpConfirmForm(request.POST)
    if not form.is_valid():
        return _render_totp(request, form, 400)
    try:
        codes = services.confirm_totp(user=request.user, device_id=form.cleaned_data["device"],
                                      code=form.cleaned_data["code"], name=form.cleaned_data["name"],
                                      context=_context(request))
    except InvalidInput as exc:
        form.add_service_errors(exc.errors)
        return _render_totp(request, form, 400)
    except NotFound as exc:
        request.session.pop(SESSION_TOTP, None)
        form.add_error(None, f"{exc.detail} Scan the new QR code below.")
        return _render_totp(request, form, 400)
    except MfaThrottled as exc:
        form.add_error(None, exc.detail)
        return _throttled(_render_totp(request, form, 429), exc.retry_after)
    return _enrolled(request, codes, "Your authenticator app")


# --- text message -----------------------------------------------------------------------------------------


def _sms_device(request: HttpRequest) -> SmsDevice | None:
    device_id = request.session.get(SESSION_SMS)
    if not isinstance(device_id, int):
        return None
    return SmsDevice.objects.filter(pk=device_id, user=request.user, confirmed=False).first()


def _render_sms(request: HttpRequest, *, phone_form: PhoneForm | None = None, code_form: SmsConfirmForm | None = None,
                notice: str = "", status: int = 200) -> HttpResponse:
    device = None if phone_form is not None else _sms_device(request)
    if device is not None:
        if code_form is None:
            code_form = SmsConfirmForm(initial={"device": device.pk})
        elif code_form.is_bound:  # re-rendered after an error: name the device the page is about
            data = code_form.data.copy()
            data["device"], data["code"] = str(device.pk), ""
            code_form.data = data
        else:
            code_form.initial["device"] = device.pk
    if code_form is not None:
        code_form.fields["code"].widget.attrs["autofocus"] = True
    if phone_form is not None and phone_form.is_bound:
        phone_form.fields["number"].widget.attrs["autofocus"] = True
    return render(request, T + "sms.html", {
        "device": device, "phone_form": phone_form or PhoneForm(), "code_form": code_form, "notice": notice,
        "next": _next(request), "code_minutes": max(1, app_settings.MFA_SMS_CODE_SECONDS // 60),
        "resend_seconds": app_settings.MFA_SMS_RESEND_SECONDS,
    }, status=status)


@code_page
def sms_setup(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        if request.GET.get("change"):
            request.session.pop(SESSION_SMS, None)
        return _render_sms(request)
    if "number" in request.POST:
        return _sms_start(request)
    if "resend" in request.POST:
        return _sms_resend(request)
    return _sms_confirm(request)


def _sms_expired(request: HttpRequest, detail: str) -> HttpResponse:
    """The setup this form belongs to is gone (confirmed elsewhere, replaced, or not the user's): start over."""
    request.session.pop(SESSION_SMS, None)
    phone_form = PhoneForm()
    phone_form.add_error(None, detail)
    return _render_sms(request, phone_form=phone_form, status=400)


def _sms_start(request: HttpRequest) -> HttpResponse:
    form = PhoneForm(request.POST)
    if not form.is_valid():
        return _render_sms(request, phone_form=form, status=400)
    try:
        device = services.start_sms(user=request.user, number=form.cleaned_data["number"], context=_context(request))
    except InvalidInput as exc:
        form.add_service_errors(exc.errors)
        return _render_sms(request, phone_form=form, status=400)
    except SmsDeliveryFailed as exc:
        form.add_error(None, exc.detail)
        return _render_sms(request, phone_form=form, status=503)
    except MfaThrottled as exc:
        form.add_error(None, exc.detail)
        return _throttled(_render_sms(request, phone_form=form, status=429), exc.retry_after)
    request.session[SESSION_SMS] = device.pk
    return HttpResponseRedirect(_with_next(reverse("twig_auth:mfa_sms"), _next(request)), status=303)


def _sms_resend(request: HttpRequest) -> HttpResponse:
    form = ResendForm(request.POST)
    code_form = SmsConfirmForm()
    try:
        if not form.is_valid():
            raise NotFound(services.EXPIRED_SETUP)
        device = services.resend_sms(user=request.user, device_id=form.cleaned_data["device"], confirmed=False)
    except NotFound as exc:
        return _sms_expired(request, exc.detail)
    except MfaThrottled as exc:
        code_form.add_error(None, exc.detail)
        return _throttled(_render_sms(request, code_form=code_form, status=429), exc.retry_after)
    except SmsDeliveryFailed as exc:
        code_form.add_error(None, exc.detail)
        return _render_sms(request, code_form=code_form, status=503)
    return _render_sms(request, notice=f"We sent a new code to {device.masked_number}. Earlier codes no longer work.")


def _sms_confirm(request: HttpRequest) -> HttpResponse:
    form = SmsConfirmForm(request.POST)
    if _sms_device(request) is None:
        return _sms_expired(request, services.EXPIRED_SETUP)
    if not form.is_valid():
        return _render_sms(request, code_form=form, status=400)
    try:
        codes = services.confirm_sms(user=request.user, device_id=form.cleaned_data["device"],
                                     code=form.cleaned_data["code"], context=_context(request))
    except InvalidInput as exc:
        form.add_service_errors(exc.errors)
        return _render_sms(request, code_form=form, status=400)
    except NotFound as exc:
        return _sms_expired(request, exc.detail)
    except MfaThrottled as exc:
        form.add_error(None, exc.detail)
        return _throttled(_render_sms(request, code_form=form, status=429), exc.retry_after)
    return _enrolled(request, codes, "Your phone")


# --- recovery codes and removal ----------------------------------------------------------------------


@sensitive_variables("codes")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseRedirect(reverse("twig_auth:mfa"))
    prompt = guard.require_step_up(request, action="create new recovery codes")
    if prompt is not None:
        return prompt
    try:
        codes = services.regenerate_recovery_codes(user=request.user, context=_context(request))
    except PermissionDenied as exc:
        messages.error(request, exc.detail)
        return HttpResponseRedirect(reverse("twig_auth:mfa"))
    return _show_codes(request, codes, title="Your new recovery codes")


def _own_device(request: HttpRequest, ref: str) -> devices.DeviceInfo:
    parsed = devices.parse_ref(ref)
    found = next((d for d in devices.confirmed_devices(request.user) if (d.kind, d.pk) == parsed), None) \
        if parsed else None
    if found is None:
        raise Http404("That device is not set up.")
    return found


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def remove_device(request: HttpRequest, ref: str) -> HttpResponse:
    device = _own_device(request, ref)
    is_last = len(devices.confirmed_devices(request.user)) == 1
    if request.method == "POST":
        prompt = guard.require_step_up(request, action="remove a two-factor device")
        if prompt is not None:
            return prompt
        try:
            services.remove_device(user=request.user, kind=device.kind, device_id=device.pk, context=_context(request))
        except NotFound as exc:
            raise Http404(exc.detail) from exc
        note = " Your recovery codes were deleted too." if is_last else ""
        messages.success(request, f"“{device.name}” was removed.{note}")
        return HttpResponseRedirect(reverse("twig_auth:mfa"))
    membership = current_membership(request)
    status = enforcement.status(membership) if membership else None
    return render(request, T + "remove.html", {"device": device, "last_used": _ago(device.last_used_at),
                                               "is_last": is_last,
                                               "required": bool(status and status.required)})
