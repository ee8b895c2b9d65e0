"""The Data sources page (``/data-sources/``): the org's data sources a member may view, their sync and
connection status, and for Google Drive and Slack the Connect / Reconnect / Disconnect buttons.

Thin: who may do what is the authorization API (``view`` to see a source, ``connect`` to connect or disconnect
it, ``process`` to sync it, ``resources.create`` to add one); the work is done by
:mod:`twig_project.workspace.services` and :mod:`twig_auth.connectors`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from twig_auth.authz.decisions import authorize, authorized, has_permission, require
from twig_auth.authz.matrix import Permission
from twig_auth.connectors import flow
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import (
    ConnectionFailed,
    ConnectorUnavailable,
    InvalidInput,
    NotConnected,
    PermissionDenied,
)
from twig_auth.orgs.active import current_membership
from twig_auth.orgs.models import Membership
from twig_project.workspace import connections, services
from twig_project.workspace.models import NAME_MAX, DataSource
from twig_project.workspace.views import OPAQUE_ID

TEMPLATE = "workspace/data_sources.html"


class DataSourceForm(forms.Form):
    name = forms.CharField(label="Name", max_length=NAME_MAX, strip=True)
    kind = forms.ChoiceField(label="Kind", choices=DataSource.Kind.choices,
                             help_text="Google Drive and Slack are connected with your account at the provider.")


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "twig_auth/usersessions/forbidden.html", {"message": message}, status=403)


def _membership(request: HttpRequest) -> Membership | None:
    return current_membership(request)


def _list_url() -> str:
    return reverse("data_sources")


def _rows(membership: Membership, context: RequestContext) -> list[dict[str, Any]]:
    sources = connections.with_connection_status(
        authorized(membership, "view", DataSource.objects.of_org(membership.org_id), context=context)
        .select_related("org"))
    rows = []
    for source in sources:
        provider = connections.provider_of(source)
        rows.append({
            "source": source,
            "oauth": connections.uses_oauth(source),
            "connection": connections.connection_status(source),
            "configured": bool(provider and provider.configured),
            "provider_name": provider.name if provider else "",
            "can_connect": authorize(membership, "connect", source, context=context).allowed,
            "can_sync": authorize(membership, "process", source, context=context).allowed,
        })
    return rows


def _render(request: HttpRequest, membership: Membership, form: DataSourceForm | None, status: int = 200) -> Any:
    context = RequestContext.from_request(request)
    can_create = has_permission(membership, Permission.RESOURCES_CREATE)
    return render(request, TEMPLATE, {
        "membership": membership, "org": membership.org, "rows": _rows(membership, context),
        "form": (form or DataSourceForm()) if can_create else None}, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def data_sources(request: HttpRequest) -> HttpResponse:
    """List the active org's data sources; POST adds one (``resources.create``, managers and above)."""
    membership = _membership(request)
    if membership is None:
        return _forbidden(request, "Join an organization to see its data sources.")
    if request.method != "POST":
        return _render(request, membership, None)
    if not has_permission(membership, Permission.RESOURCES_CREATE):
        return _forbidden(request, "Only managers and above can add data sources.")
    form = DataSourceForm(request.POST)
    if form.is_valid():
        try:
            source = services.create_data_source(org=membership.org, name=form.cleaned_data["name"],
                                                 kind=form.cleaned_data["kind"],
                                                 context=RequestContext.from_request(request))
        except InvalidInput as exc:
            for field, problems in exc.errors.items():
                for problem in problems:
                    form.add_error(field if field in form.fields else None, problem)
        else:
            note = " Connect it to give Twig access." if connections.uses_oauth(source) else ""
            messages.success(request, f"{source.name} was added.{note}")
            return HttpResponseRedirect(_list_url())
    return _render(request, membership, form, status=400)


def _source_for(request: HttpRequest, pk: str, action: str) -> tuple[Membership, DataSource]:
    """The org's source ``pk`` if the member may ``action`` it: Http404 when it is unknown or hidden,
    PermissionDenied (audited) when it is visible but the action is not allowed."""
    membership = _membership(request)
    if membership is None or not OPAQUE_ID.fullmatch(pk):
        raise Http404
    source = DataSource.objects.of_org(membership.org_id).select_related("org").filter(pk=pk).first()
    context = RequestContext.from_request(request)
    if source is None or not authorize(membership, "view", source, context=context).allowed:
        raise Http404
    require(membership, action, source, context=context)
    return membership, source


@never_cache
@login_required
@require_POST
def connect(request: HttpRequest, pk: str) -> HttpResponse:
    """Start (or restart) the OAuth connection of a Google Drive or Slack source (``connect``)."""
    try:
        membership, source = _source_for(request, pk, "connect")
    except PermissionDenied as exc:
        return _forbidden(request, exc.detail)
    provider = connections.provider_of(source)
    if provider is None:
        messages.error(request, f"{source.get_kind_display()} sources are not connected through OAuth.")
        return HttpResponseRedirect(_list_url())
    try:
        url = flow.begin(request, org=membership.org, provider=provider, subject=source.pk, return_to=_list_url())
    except ConnectorUnavailable as exc:
        messages.error(request, exc.detail)
        return HttpResponseRedirect(_list_url())
    return HttpResponseRedirect(url)


@never_cache
@login_required
@require_POST
def disconnect(request: HttpRequest, pk: str) -> HttpResponse:
    """Revoke the source's tokens at the provider and delete them (``connect``)."""
    try:
        _, source = _source_for(request, pk, "connect")
    except PermissionDenied as exc:
        return _forbidden(request, exc.detail)
    outcome = connections.disconnect(source, context=RequestContext.from_request(request))
    if outcome is None:
        messages.info(request, f"{source.name} was not connected.")
    elif "failed" in outcome.values():
        messages.warning(request, f"{source.name} is disconnected here, but the provider could not be reached to "
                                  "revoke its access: remove Twig's access in your account at the provider.")
    else:
        messages.success(request, f"{source.name} is disconnected; its access was revoked at the provider.")
    return HttpResponseRedirect(_list_url())


@never_cache
@login_required
@require_POST
def sync(request: HttpRequest, pk: str) -> HttpResponse:
    """Synchronize the source now (``process``)."""
    try:
        _, source = _source_for(request, pk, "process")
    except PermissionDenied as exc:
        return _forbidden(request, exc.detail)
    try:
        services.sync_data_source(source=source, context=RequestContext.from_request(request))
    except ConnectionFailed:
        messages.error(request, f"Connection failed — reconnect {source.name}: the provider no longer accepts "
                                "its access.")
    except (NotConnected, ConnectorUnavailable) as exc:
        messages.error(request, f"{source.name} was not synced: {exc.detail}")
    else:
        messages.success(request, f"{source.name} is synced.")
    return HttpResponseRedirect(_list_url())
