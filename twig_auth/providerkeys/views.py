"""Settings → External API keys (admins of the active org): list, add, replace, delete. Thin: the form and
:mod:`.validation` check input, :mod:`.services` write (audited), every change asks for a fresh second factor.

A key travels from the browser to the server once. It is never rendered back: not after a validation error,
and not as a hidden input of the second-factor prompt. So the add and replace forms take the code inline when
the last second factor is not recent; when the code is wrong or missing (a text message was wanted), the prompt
re-posts the other fields and the form asks for the key again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods

from twig_auth.apikeys.views import ago
from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, NotFound
from twig_auth.mfa import devices, stepup
from twig_auth.mfa.guard import CODE_FIELD, require_step_up
from twig_auth.orgs.active import current_admin_membership
from twig_auth.orgs.models import Membership
from twig_auth.providerkeys import services, validation
from twig_auth.providerkeys.forms import ExternalKeyForm
from twig_auth.providerkeys.models import ExternalApiKey, Provider

TEMPLATES = "twig_auth/providerkeys/"
PAGE = "twig_auth:external_api_keys"
RESUME_FIELD = "twig_resume"  # set on the fields the step-up prompt re-posts: "the key is to be pasted again"
SAVE_ACTION = "save an external API key"
DELETE_ACTION = "delete an external API key"
FORBIDDEN = "Only admins of the organization can manage its external API keys."

Renderer = Callable[[ExternalKeyForm, str], HttpResponse]


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "twig_auth/usersessions/forbidden.html", {"message": FORBIDDEN}, status=403)


def _get_key(membership: Membership, key_pk: str) -> ExternalApiKey:
    try:
        return services.get_key(org=membership.org, key_pk=key_pk)
    except NotFound as exc:
        raise Http404(exc.detail) from exc


def _step_up_context(request: HttpRequest) -> dict[str, Any]:
    fresh = stepup.is_fresh(request.session)
    return {"step_up_fresh": fresh, "has_mfa": fresh or devices.has_mfa(request.user), "code_field": CODE_FIELD,
            "step_up_minutes": max(1, app_settings.MFA_STEP_UP_SECONDS // 60)}


def _rows(org: Any) -> list[dict[str, Any]]:
    keys = services.keys_by_provider(org)
    now = clock.now()
    rows = []
    for value, label in Provider.choices:
        key = keys.get(value)
        rows.append({"provider": value, "label": label, "key": key,
                     "added_by": getattr(key.updated_by, "email", "") if key and key.updated_by else "",
                     "last_used": ago(key.last_used_at, now) if key else ""})
    return rows


def _page(request: HttpRequest, membership: Membership, form: ExternalKeyForm, notice: str = "",
          status: int = 200) -> HttpResponse:
    rows = _rows(membership.org)
    return render(request, TEMPLATES + "list.html", {
        "membership": membership, "org": membership.org, "rows": rows, "form": form, "notice": notice,
        "custom": validation.CUSTOM, "has_any": any(row["key"] for row in rows), **_step_up_context(request),
    }, status=status)


def _replace_page(request: HttpRequest, membership: Membership, key: ExternalApiKey, form: ExternalKeyForm,
                  notice: str = "", status: int = 200) -> HttpResponse:
    return render(request, TEMPLATES + "replace.html", {
        "membership": membership, "org": membership.org, "key": key, "form": form, "notice": notice,
        "custom": validation.CUSTOM, **_step_up_context(request)}, status=status)


def _step_up(request: HttpRequest) -> HttpResponse | None:
    """Ask for a second factor unless one is recent (or the inline code is right). The prompt re-posts every
    field but the key, marked with :data:`RESUME_FIELD`."""
    if stepup.is_fresh(request.session):
        return None
    post = request.POST.copy()
    post.pop("secret", None)
    if not post.get(CODE_FIELD, "").strip():
        post.pop(CODE_FIELD, None)  # an empty inline code means "ask me on the next page", not a wrong code
    post[RESUME_FIELD] = "1"
    request.POST = post  # type: ignore[misc]
    return require_step_up(request, action=SAVE_ACTION)


@sensitive_variables("form")
def _save(request: HttpRequest, membership: Membership, form: ExternalKeyForm, rerender: Renderer) -> HttpResponse:
    if request.POST.get(RESUME_FIELD) == "1" and not request.POST.get("secret"):
        # Back from the second-factor prompt, which does not carry the key: check its code, then ask for the key.
        prompt = _step_up(request)
        if prompt is not None:
            return prompt
        initial = {"provider": form.chosen_provider, "endpoint_url": request.POST.get("endpoint_url", "")[:500]}
        again = ExternalKeyForm(initial=initial, provider=form.fixed_provider)
        again.fields["secret"].widget.attrs["autofocus"] = True
        return rerender(again, "Your second factor is confirmed. Paste the API key again and save: Twig never "
                               "sends a key back to your browser, not even through the confirmation step.")
    if not form.is_valid():
        form.focus_first_error()
        return rerender(form, "")
    prompt = _step_up(request)
    if prompt is not None:
        return prompt
    data = form.cleaned_data
    try:
        key = services.save_external_key(org=membership.org, provider=data["provider"], secret=data["secret"],
                                         endpoint_url=data["endpoint_url"],
                                         context=RequestContext.from_request(request))
    except InvalidInput as exc:  # pragma: no cover  (the form ran the same validation)
        form.add_service_errors(exc.errors)
        return rerender(form, "")
    messages.success(request, f"The {key.get_provider_display()} key {key.masked} is saved. Agents set to “Use "
                     "my key” call the provider with it from now on.")
    return HttpResponseRedirect(reverse(PAGE))


@never_cache
@login_required
@require_GET
def external_api_keys(request: HttpRequest) -> HttpResponse:
    """The org's key per provider and the "Add key" form (``?provider=`` preselects one)."""
    membership = current_admin_membership(request)
    if membership is None:
        return _forbidden(request)
    wanted = request.GET.get("provider", "")
    if wanted not in validation.PROVIDERS:
        taken = set(services.keys_by_provider(membership.org))
        wanted = next((p for p in validation.PROVIDERS if p not in taken), validation.OPENAI)
    return _page(request, membership, ExternalKeyForm(initial={"provider": wanted}))


@sensitive_post_parameters("secret", CODE_FIELD)
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def add(request: HttpRequest) -> HttpResponse:
    """Save the posted key: added, or replacing the org's key of that provider."""
    membership = current_admin_membership(request)
    if membership is None:
        return _forbidden(request)
    if request.method != "POST":
        wanted = request.GET.get("provider", "")
        query = f"?provider={wanted}" if wanted in validation.PROVIDERS else ""
        return HttpResponseRedirect(reverse(PAGE) + query + "#add")
    return _save(request, membership, ExternalKeyForm(request.POST),
                 lambda form, notice: _page(request, membership, form, notice))


@sensitive_post_parameters("secret", CODE_FIELD)
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def replace(request: HttpRequest, key_pk: str) -> HttpResponse:
    """Replace one key (same provider, same row); a custom endpoint changes only with a new key."""
    membership = current_admin_membership(request)
    if membership is None:
        return _forbidden(request)
    key = _get_key(membership, key_pk)
    if request.method != "POST":
        form = ExternalKeyForm(initial={"endpoint_url": key.endpoint_url}, provider=key.provider)
        form.fields["secret"].widget.attrs["autofocus"] = True
        return _replace_page(request, membership, key, form)
    return _save(request, membership, ExternalKeyForm(request.POST, provider=key.provider),
                 lambda form, notice: _replace_page(request, membership, key, form, notice))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, key_pk: str) -> HttpResponse:
    """Confirm, then delete one key (after a second factor)."""
    membership = current_admin_membership(request)
    if membership is None:
        return _forbidden(request)
    key = _get_key(membership, key_pk)
    if request.method != "POST":
        return render(request, TEMPLATES + "delete.html", {"key": key, "org": membership.org,
                                                           "last_used": ago(key.last_used_at, clock.now())})
    prompt = require_step_up(request, action=DELETE_ACTION)
    if prompt is not None:
        return prompt
    try:
        services.delete_external_key(key=key, context=RequestContext.from_request(request))
    except NotFound as exc:
        messages.info(request, exc.detail)
    else:
        messages.success(request, f"The {key.get_provider_display()} key {key.masked} was deleted.")
    return HttpResponseRedirect(reverse(PAGE))
