"""SSO pages: "Sign in with SSO" (``/login/sso/``) and Settings → Authentication (``/settings/authentication/``).

Thin: forms validate, :mod:`twig_auth.sso.services` and :mod:`twig_auth.sso.domains` change things (audited),
and every change asks for a fresh second factor first, like the security settings.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import Conflict, InvalidInput, PermissionDenied
from twig_auth.mfa.guard import require_step_up
from twig_auth.mfa.middleware import mfa_exempt
from twig_auth.orgs.active import current_admin_membership
from twig_auth.orgs.models import Membership
from twig_auth.passwords.views import safe_next
from twig_auth.ratelimit import endpoints
from twig_auth.sso import domains, enforcement, saml_config, services
from twig_auth.sso.forms import ConnectionForm, DiscoverForm, DomainForm
from twig_auth.sso.models import Protocol, SsoConnection, SsoDomain
from twig_auth.sso.start import start_url

TEMPLATES = "twig_auth/sso/"
NO_SSO = "No single sign-on is set up for this email domain."
PAGE = "twig_auth:authentication_settings"


# --- Sign in with SSO -----------------------------------------------------------------------------------------

@mfa_exempt
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def discover(request: HttpRequest) -> HttpResponse:
    """Ask the email, send the browser to its org's IdP. Whatever the reason there is no SSO (unknown or
    unverified domain, no enabled connection, not enterprise) the answer is the same, so the page cannot be
    used to list which companies are customers; it is throttled like the login page (per IP and per email)."""
    next_url = safe_next(request, default="")
    if request.method != "POST":
        return _discover_page(request, DiscoverForm(), next_url)
    email = request.POST.get("email", "")
    limit = endpoints.check_login(request, email)
    if not limit.allowed:
        messages.error(request, endpoints.refused_message(endpoints.LOGIN, limit))
        form = DiscoverForm(initial={"email": email[:254]})
        return endpoints.apply_headers(_discover_page(request, form, next_url, 429), limit)
    form = DiscoverForm(request.POST)
    if form.is_valid():
        org = domains.org_for_email(form.cleaned_data["email"])
        connection = enforcement.enabled_connection(org) if org is not None and org.is_enterprise else None
        if connection is not None:
            return endpoints.apply_headers(HttpResponseRedirect(start_url(connection, next_url)), limit)
        form.add_error("email", NO_SSO)
    return endpoints.apply_headers(_discover_page(request, form, next_url), limit)


def _discover_page(request: HttpRequest, form: DiscoverForm, next_url: str, status: int = 200) -> HttpResponse:
    return render(request, TEMPLATES + "discover.html", {"form": form, "next": next_url}, status=status)


# --- Settings → Authentication --------------------------------------------------------------------------------

def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "twig_auth/usersessions/forbidden.html", {
        "message": "Only admins of the organization can change how its members sign in."}, status=403)


def _sp_details(org_slug: str) -> dict[str, str]:
    try:
        urls = saml_config.sp_urls(org_slug)
    except ImproperlyConfigured as exc:
        return {"problem": str(exc)}
    return {"entity_id": urls["entity_id"], "acs_url": urls["acs_url"], "metadata_url": urls["entity_id"]}


def _oidc_redirect_uri(request: HttpRequest, connection: SsoConnection | None) -> str:
    """The callback to register at an OIDC IdP (it names the provider, and for generic OIDC the connection)."""
    if connection is None or connection.protocol != Protocol.OIDC or not connection.oidc_provider:
        return ""
    from twig_auth.sso.oidc import redirect_uri

    return redirect_uri(request, connection)


def _last_sso_login(connection: SsoConnection | None) -> Any:
    if connection is None:
        return None
    return (AuditEvent.objects.filter(org_id=connection.org_id, event=Event.LOGIN_SUCCESS,
                                      details__connection=connection.pk)
            .order_by("-timestamp").values_list("timestamp", flat=True).first())


def _render(request: HttpRequest, membership: Membership, *, form: ConnectionForm | None = None,
            domain_form: DomainForm | None = None, status: int = 200) -> HttpResponse:
    org = membership.org
    connection = services.org_connection(org)
    page = reverse(PAGE)
    claimed = list(SsoDomain.objects.filter(org=org))
    return render(request, TEMPLATES + "settings.html", {
        "membership": membership, "org": org, "connection": connection, "tab": "authentication",
        "enterprise": org.is_enterprise,
        "form": form or ConnectionForm(connection=connection),
        "domain_form": domain_form or DomainForm(),
        "domains": [(d, domains.instructions(d)) for d in claimed],
        "sp": _sp_details(org.slug),
        "oidc_redirect_uri": _oidc_redirect_uri(request, connection),
        "enforce": enforcement.enforces_sso(org),
        "last_login": _last_sso_login(connection),
        "test_url": start_url(connection, page, test=True) if connection is not None and connection.enabled else "",
        "break_glass_roles": enforcement.app_settings.SSO_BREAK_GLASS_ROLES,
        "protocols": Protocol,
    }, status=status)


def _guard(request: HttpRequest) -> tuple[Membership | None, HttpResponse | None]:
    """The admin membership, or the answer to give instead (403 for non-admins; for orgs without the
    enterprise plan the page explains, and any POST is refused)."""
    membership = current_admin_membership(request)
    if membership is None:
        return None, _forbidden(request)
    if not membership.org.is_enterprise:
        return None, _render(request, membership, status=403 if request.method == "POST" else 200)
    return membership, None


@never_cache
@login_required
@sensitive_post_parameters("oidc_client_secret")
@require_http_methods(["GET", "POST"])
def authentication_settings(request: HttpRequest) -> HttpResponse:
    """Show the connection status, the SP details, the connection form, the domains and Enforce SSO; save
    the connection form."""
    membership, answer = _guard(request)
    if answer is not None:
        return answer
    assert membership is not None
    if request.method != "POST":
        return _render(request, membership)
    org = membership.org
    connection = services.org_connection(org)
    form = ConnectionForm(request.POST, request.FILES, connection=connection)
    if not form.is_valid():
        return _render(request, membership, form=form)
    xml = form.cleaned_data.get("metadata_xml") or ""
    if xml and request.FILES:  # the step-up prompt re-posts fields, not files: carry the XML as a field
        post = request.POST.copy()
        post["idp_metadata_xml"] = xml
        request.POST = post  # type: ignore[misc]
    prompt = require_step_up(request, action="change how the organization's members sign in")
    if prompt is not None:
        return prompt
    try:
        saved = services.save_connection(org=org, protocol=form.cleaned_data["protocol"], values=form.values(),
                                         metadata_xml=xml or None, context=RequestContext.from_request(request))
    except InvalidInput as exc:
        form.add_service_errors(exc.errors)
        return _render(request, membership, form=form)
    except (PermissionDenied, Conflict) as exc:
        form.add_error(None, exc.detail)
        return _render(request, membership, form=form, status=403 if isinstance(exc, PermissionDenied) else 200)
    messages.success(request, f"The {saved.get_protocol_display()} connection was saved"
                     + ("." if saved.enabled else "; enable it when you have tested it."))
    return HttpResponseRedirect(reverse(PAGE))


def _change(request: HttpRequest, action: str, change: Any, success: str) -> HttpResponse:
    """Run ``change(membership, context)`` after the step-up; errors go to a message on the page."""
    membership, answer = _guard(request)
    if answer is not None:
        return answer
    assert membership is not None
    prompt = require_step_up(request, action=action)
    if prompt is not None:
        return prompt
    try:
        change(membership, RequestContext.from_request(request))
    except InvalidInput as exc:
        for problems in exc.errors.values():
            for problem in problems:
                messages.error(request, problem)
        return _render(request, membership, status=400)
    except (PermissionDenied, Conflict) as exc:
        messages.error(request, exc.detail)
        return _render(request, membership, status=403 if isinstance(exc, PermissionDenied) else 409)
    messages.success(request, success)
    return HttpResponseRedirect(reverse(PAGE))


@never_cache
@login_required
@require_POST
def connection_enabled(request: HttpRequest) -> HttpResponse:
    enable = request.POST.get("enabled") == "1"

    def change(membership: Membership, context: RequestContext) -> None:
        connection = services.org_connection(membership.org)
        if connection is None:
            raise InvalidInput({"enabled": ["Save a connection first."]})
        services.set_enabled(connection=connection, enabled=enable, context=context)

    return _change(request, f"{'enable' if enable else 'disable'} single sign-on", change,
                   "Single sign-on is enabled." if enable else "Single sign-on is disabled.")


@never_cache
@login_required
@require_POST
def enforce(request: HttpRequest) -> HttpResponse:
    on = request.POST.get("enforce") == "1"
    return _change(request, f"{'enforce' if on else 'stop enforcing'} single sign-on",
                   lambda m, c: services.set_enforce(org=m.org, enforce=on, context=c),
                   "Members now sign in with single sign-on only." if on
                   else "Members may sign in with their password again.")


@never_cache
@login_required
@require_POST
def domain_add(request: HttpRequest) -> HttpResponse:
    membership, answer = _guard(request)
    if answer is not None:
        return answer
    assert membership is not None
    form = DomainForm(request.POST)
    if not form.is_valid():
        return _render(request, membership, domain_form=form)
    try:
        domains.clean_domain(membership.org, form.cleaned_data["domain"])  # before the prompt: errors at once
        prompt = require_step_up(request, action="add an email domain")
        if prompt is not None:
            return prompt
        added = domains.add_domain(org=membership.org, domain=form.cleaned_data["domain"],
                                   context=RequestContext.from_request(request))
    except InvalidInput as exc:
        for problem in exc.errors.get("domain", [exc.detail]):
            form.add_error("domain", problem)
        return _render(request, membership, domain_form=form)
    except (PermissionDenied, Conflict) as exc:
        form.add_error("domain", exc.detail)
        return _render(request, membership, domain_form=form)
    messages.success(request, f"{added.domain} was added. Create its TXT record, then press Verify now.")
    return HttpResponseRedirect(reverse(PAGE))


@never_cache
@login_required
@require_POST
def domain_verify(request: HttpRequest, pk: int) -> HttpResponse:
    """Look the TXT record up now (no step-up: it changes nothing the DNS does not already prove)."""
    membership, answer = _guard(request)
    if answer is not None:
        return answer
    assert membership is not None
    claimed = get_object_or_404(SsoDomain, pk=pk, org=membership.org)
    try:
        domains.verify_domain(domain=claimed, context=RequestContext.from_request(request))
    except (InvalidInput, Conflict) as exc:
        messages.error(request, exc.detail)
        return _render(request, membership, status=400)
    messages.success(request, f"{claimed.domain} is verified: its members are sent to your identity provider.")
    return HttpResponseRedirect(reverse(PAGE))
