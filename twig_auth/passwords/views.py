"""Login, logout, password change and reset pages. Thin: validate, call a service, render."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login as django_login
from django.contrib.auth import logout as django_logout
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from twig_auth.conf import app_settings
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import SsoRequired
from twig_auth.mfa.middleware import mfa_exempt
from twig_auth.orgs.active import SESSION_KEY, current_membership, memberships_of
from twig_auth.passwords import forms, services
from twig_auth.ratelimit import endpoints

BACKEND = "twig_auth.passwords.backends.EmailBackend"


def safe_next(request: HttpRequest, default: str | None = None) -> str:
    """Return the ``next`` parameter when it points to this site, else the default landing page."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default or app_settings.LOGIN_REDIRECT_URL


@mfa_exempt
@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET" and request.user.is_authenticated:
        return HttpResponseRedirect(safe_next(request))
    if request.method != "POST":
        return _render_login(request, forms.LoginForm(request), 200)
    email = request.POST.get("email", "")
    limit = endpoints.check_login(request, email)
    if not limit.allowed:
        # Refused before the form is validated: no password hash, no lockout counting, no audit row.
        messages.error(request, endpoints.refused_message(endpoints.LOGIN, limit))
        form = forms.LoginForm(request, initial={"email": email[:254]})
        return endpoints.apply_headers(_render_login(request, form, 429), limit)
    form = forms.LoginForm(request, data=request.POST)
    if form.is_valid():
        return endpoints.apply_headers(_complete_login(request, form.user), limit)
    response = _render_login(request, form, 403 if form.retry_after else 200)
    if form.retry_after:
        response["Retry-After"] = str(form.retry_after)
    return endpoints.apply_headers(response, limit)


def _render_login(request: HttpRequest, form: forms.LoginForm, status: int,
                  sso_required: SsoRequired | None = None) -> HttpResponse:
    return render(request, "twig_auth/passwords/login.html", {
        "form": form, "next": safe_next(request, default=""), "sso_required": sso_required,
        "sso_url": sso_required.extra.get("sso_url", "") if sso_required else ""}, status=status)


def _complete_login(request: HttpRequest, user: Any) -> HttpResponse:
    """After the password: an org enforcing SSO refuses it (unless break-glass, see twig_auth.sso.enforcement);
    members with a second factor go on to the code page; everyone else is signed in."""
    from twig_auth.mfa import pending
    from twig_auth.mfa.devices import has_mfa
    from twig_auth.sso import enforcement

    next_url = safe_next(request, default="")
    membership = enforcement.default_membership(user)
    try:
        verdict = enforcement.check_password_login(membership, next_url=next_url)
    except SsoRequired as exc:
        services.record_sso_required(user=user, org=membership.org if membership else None,
                                     context=RequestContext.from_request(request))
        form = forms.LoginForm(request, initial={"email": getattr(user, user.get_email_field_name(), "")})
        return _render_login(request, form, 403, sso_required=exc)
    # Break-glass: the login acts in the enforcing org and its LOGIN_SUCCESS says so (after the code, too).
    details = {"method": "password", "breakGlass": True} if verdict.break_glass else None
    org = membership.org if details and membership else None
    if has_mfa(user):
        pending.begin(request.session, user, next_url, sso={"org": org.pk, "details": details} if org else None)
        return HttpResponseRedirect(reverse("twig_auth:login_mfa"))
    return finish_login(request, user, org=org, login_details=details)


def finish_login(request: HttpRequest, user: Any, *, mfa_method: str | None = None,
                 next_url: str | None = None, org: Any = None,
                 login_details: dict[str, Any] | None = None) -> HttpResponse:
    """Sign ``user`` in on this session (after the password, and the second factor if they have one).

    ``org`` (an SSO login) becomes the active org, so there is no org chooser; ``login_details`` replace the
    ``LOGIN_SUCCESS`` details' default ``{"method": "password"}`` (SSO: method, protocol, connection, idpMfa).
    """
    from twig_auth.mfa import pending, stepup

    pending.clear(request.session)
    django_login(request, user, backend=BACKEND)
    if mfa_method:
        stepup.mark_verified(request.session)
    memberships = memberships_of(user)
    target = next_url or safe_next(request)
    org_given = org is not None
    if org_given:
        request.session[SESSION_KEY] = org.pk
        if (login_details or {}).get("method") == "sso":
            from twig_auth.sso.enforcement import SSO_ORG_KEY

            request.session[SSO_ORG_KEY] = org.pk
    elif len(memberships) == 1:
        request.session[SESSION_KEY] = memberships[0].org_id
        org = memberships[0].org
    services.record_login(user=user, org=org, context=RequestContext.from_request(request),
                          mfa_used=bool(mfa_method), mfa_method=mfa_method, details=login_details)
    if len(memberships) > 1 and not org_given:
        return HttpResponseRedirect(f"{reverse('twig_auth:choose_org')}?{urlencode({'next': target})}")
    return HttpResponseRedirect(target)


@mfa_exempt
@csrf_protect
@never_cache
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if request.user.is_authenticated:
            membership = current_membership(request)
            services.record_logout(user=request.user, org=membership.org if membership else None,
                                   context=RequestContext.from_request(request))
        django_logout(request)
        messages.success(request, "You are signed out.")
        return HttpResponseRedirect(reverse("twig_auth:login"))
    return render(request, "twig_auth/passwords/logout.html")


@method_decorator(sensitive_post_parameters(), name="dispatch")
class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = forms.PasswordChangeForm
    template_name = "twig_auth/passwords/password_change.html"
    success_url = reverse_lazy("twig_auth:password_change_done")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.record_password_changed(user=form.user, context=RequestContext.from_request(self.request),
                                         via="change")
        messages.success(self.request, "Your password was changed.")
        return response


class PasswordResetView(auth_views.PasswordResetView):
    form_class = forms.PasswordResetForm
    template_name = "twig_auth/passwords/password_reset.html"
    email_template_name = "twig_auth/passwords/password_reset_email.txt"
    subject_template_name = "twig_auth/passwords/password_reset_subject.txt"
    success_url = reverse_lazy("twig_auth:password_reset_done")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(expires_in_minutes=_reset_minutes(), **kwargs)

    @property
    def extra_email_context(self) -> dict[str, Any]:  # type: ignore[override]
        return {"expires_in_minutes": _reset_minutes()}

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Per IP and per typed email, counted whether or not an account has that email; so the wait message
        # (the same for both buckets) says nothing about which addresses exist. A refused request sends nothing.
        email = request.POST.get("email", "")
        limit = endpoints.check_reset(request, email)
        if not limit.allowed:
            messages.error(request, endpoints.refused_message(endpoints.PASSWORD_RESET, limit))
            form = self.get_form_class()(initial={"email": email[:254]})
            response = self.render_to_response(self.get_context_data(form=form), status=429)
        else:
            response = super().post(request, *args, **kwargs)
        return endpoints.apply_headers(response, limit)

    def form_valid(self, form: Any) -> HttpResponse:
        email = form.cleaned_data["email"]
        from twig_auth.audit.events import Event
        from twig_auth.audit.services import record

        record(Event.PASSWORD_RESET_REQUESTED, context=RequestContext.from_request(self.request),
               email=email.lower(), details={"sent": True})
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "twig_auth/passwords/password_reset_done.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(expires_in_minutes=_reset_minutes(), **kwargs)


def _reset_minutes() -> int:
    from django.conf import settings

    return max(1, settings.PASSWORD_RESET_TIMEOUT // 60)


@method_decorator(sensitive_post_parameters(), name="dispatch")
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = forms.SetPasswordForm
    template_name = "twig_auth/passwords/password_reset_confirm.html"
    success_url = reverse_lazy("twig_auth:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.record_password_changed(user=form.user, context=RequestContext.from_request(self.request),
                                         via="reset")
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "twig_auth/passwords/password_reset_complete.html"


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "twig_auth/passwords/password_change_done.html"
