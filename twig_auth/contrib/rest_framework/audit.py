"""``GET /api/audit-events`` (export the org's audit log), and :func:`audit_access` for API views that read resources.

``GET /api/audit-events``: org admins (``audit.view``; API keys need the ``admin`` scope). Filters ``event``
(repeatable), ``user`` (id or email), ``ip``, ``since``, ``until`` (exclusive), ``target_type``, ``target_id``;
newest first; ``limit`` (1–200, 50) events per page and the opaque ``cursor`` of the ``next`` link. ``format=jsonl``
or ``format=csv`` streams every matching event instead (no pagination) as a download. Bad filters: 400 ``invalid``
naming the field. See :mod:`twig_auth.audit.export`.
"""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from twig_auth.apikeys.scopes import Scope
from twig_auth.apikeys.verification import KeyPrincipal
from twig_auth.audit import export
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.audit.services import record_access
from twig_auth.authz.matrix import Permission
from twig_auth.contrib.rest_framework.authz import HasPermission, request_context
from twig_auth.contrib.rest_framework.permissions import request_membership
from twig_auth.contrib.rest_framework.views import TwigAPIView
from twig_auth.core import clock


def credential_of(request: Request) -> tuple[str, str]:
    """``(credential, key id)`` of an API request: ``("api_key", <key id>)``, ``("access_token", "")`` or
    ``("session", "")``."""
    principal = request.auth
    if isinstance(principal, KeyPrincipal):
        return "api_key", principal.id
    if principal is not None and hasattr(principal, "membership"):
        return "access_token", ""
    return "session", ""


def audit_access(request: Request, *, action: str, target: Any = None, resource: str | None = None,
                 details: dict[str, Any] | None = None) -> AuditEvent | None:
    """Record ``RESOURCE_ACCESS`` for this request's read of ``target`` (or of the listing ``resource``), coalesced
    per (actor, credential, resource, action) by :func:`twig_auth.audit.services.record_access`."""
    membership = request_membership(request)
    if membership is None:
        return None
    credential, key_id = credential_of(request)
    return record_access(context=request_context(request), org=membership.org_id, action=action,
                         target=target, resource=resource, credential=credential, key_id=key_id,
                         details={"method": request.method, **(details or {})})


# --- GET /api/audit-events ---------------------------------------------------------------------------------

RECORD = inline_serializer("AuditRecord", fields={
    "id": serializers.IntegerField(),
    "timestamp": serializers.DateTimeField(),
    "event": serializers.ChoiceField(choices=Event.values),
    "userId": serializers.CharField(allow_null=True),
    "email": serializers.CharField(allow_blank=True),
    "ipAddress": serializers.CharField(allow_null=True),
    "userAgent": serializers.CharField(allow_blank=True),
    "mfaUsed": serializers.BooleanField(),
    "sessionId": serializers.CharField(allow_blank=True),
    "org": serializers.IntegerField(allow_null=True),
    "target": inline_serializer("AuditTarget", fields={
        "type": serializers.CharField(allow_blank=True), "id": serializers.CharField(allow_blank=True),
        "repr": serializers.CharField(allow_blank=True)}),
    "details": serializers.DictField(),
    "seq": serializers.IntegerField(help_text="Position in the org's hash chain."),
    "prevHash": serializers.CharField(help_text="hash of the chain's previous event."),
    "hash": serializers.CharField(help_text="SHA-256 of this event's canonical JSON (docs/audit.md)."),
})
PAGE = inline_serializer("AuditEventPage", fields={
    "results": serializers.ListField(child=RECORD),
    "next": serializers.URLField(allow_null=True, help_text="The next (older) page, or null at the end."),
})
PARAMETERS = [
    OpenApiParameter("event", str, many=True, enum=Event.values,
                     description="Only these events (repeat the parameter for several)."),
    OpenApiParameter("user", str, description="A user id, or an email (case-insensitive)."),
    OpenApiParameter("ip", str, description="A client IPv4 or IPv6 address."),
    OpenApiParameter("since", str, description="ISO 8601 date or date-time (UTC when no offset), inclusive."),
    OpenApiParameter("until", str, description="ISO 8601 date or date-time (UTC when no offset), exclusive."),
    OpenApiParameter("target_type", str, description='Such as "twig_auth.membership" or "workspace.agent".'),
    OpenApiParameter("target_id", str),
    OpenApiParameter("limit", int, description=f"Events per page, 1–{export.MAX_PAGE} ({export.DEFAULT_PAGE})."),
    OpenApiParameter("cursor", str, description="From the previous page's next link."),
    OpenApiParameter("format", str, enum=list(export.FORMATS),
                     description="json (pages), or jsonl / csv: every matching event, streamed as a download."),
]


class _Passthrough(BaseRenderer):
    """Named so DRF's ``?format=`` override accepts jsonl and csv; the view streams those bodies itself."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return JSONRenderer().render(data, accepted_media_type, renderer_context)


class JsonLinesRenderer(_Passthrough):
    media_type = "application/x-ndjson"
    format = "jsonl"


class CsvRenderer(_Passthrough):
    media_type = "text/csv"
    format = "csv"


class AuditEventListView(TwigAPIView):
    required_scopes = {"*": Scope.ADMIN}
    permission_classes = [HasPermission(Permission.AUDIT_VIEW)]
    renderer_classes = [JSONRenderer, JsonLinesRenderer, CsvRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        # The body's format is the ``format`` parameter (validated below), never the Accept header: errors and
        # pages are JSON, jsonl/csv are streamed by the view.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        tags=["audit"], parameters=PARAMETERS,
        responses={(200, "application/json"): PAGE,
                   (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description=(
                       "format=jsonl: one record per line, every matching event, newest first.")),
                   (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=(
                       "format=csv: a header row, then one row per matching event (details as JSON)."))},
        summary="Export your organization's audit log: filtered, newest first, paginated or streamed (admin+)",
    )
    def get(self, request: Request) -> Any:
        params = request.query_params
        fmt = export.format_from(params)
        filters = export.parse_filters(params)
        org = self.membership.org
        events = export.org_events(org.pk, filters)
        if fmt != "json":
            response = StreamingHttpResponse(export.stream(events, fmt), content_type=export.MEDIA_TYPES[fmt])
            response["Content-Disposition"] = f'attachment; filename="{export.filename(org, fmt, clock.now())}"'
            response["Cache-Control"] = "no-store"
            return response
        limit = export.limit_from(params)
        rows, cursor = export.page_after(events, params.get("cursor") or None, limit)
        next_url = None
        if cursor is not None:
            query = params.copy()
            query["cursor"] = cursor
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        response = Response({"results": [row.as_export() for row in rows], "next": next_url})
        response["Cache-Control"] = "no-store"
        return response
