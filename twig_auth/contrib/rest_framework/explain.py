"""``GET /api/authz/explain``: why a member may or may not do an action on a resource (admins).

Query parameters:

- ``member``: the member's email or membership id (404 ``not_found`` when not a member of your org);
- ``action``: an action of the resource's type (``use``);
- ``resource``: ``type:id``, such as ``agent:agt_…`` (404 ``not_found`` when there is no such resource in your
  org; a wildcard is refused: a decision is about one resource);
- ``at`` (optional): an ISO 8601 date and time to decide at instead of now; without an offset it is read in
  the org's time zone;
- ``ip`` and ``mfa`` (optional): the request attributes that policies may test (default: none, false).

Malformed input answers 400 ``invalid`` naming each bad parameter. The answer is
:meth:`AuthzDecision.as_dict`: ``{"allowed", "decidedBy", "reason", "steps": [{"kind", "outcome", "detail"}],
"policyIds"}``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from twig_auth.apikeys.scopes import Scope
from twig_auth.authz import registry
from twig_auth.authz.decisions import explain, resolve_resource
from twig_auth.authz.matrix import Permission
from twig_auth.contrib.rest_framework.authz import HasPermission
from twig_auth.contrib.rest_framework.views import TwigAPIView
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, NotFound
from twig_auth.orgs import policy
from twig_auth.orgs.models import Membership, Organization

MAX_PARAM = 254
TRUE = {"true", "1", "yes"}
FALSE = {"false", "0", "no", ""}

STEP_FIELDS = {
    "kind": serializers.ChoiceField(choices=["membership", "time_window", "sod", "policy", "role", "owner", "grant",
                                             "default"]),
    "outcome": serializers.ChoiceField(choices=["allow", "deny", "skip"]),
    "detail": serializers.CharField(),
}
DECISION = inline_serializer("AuthzDecision", fields={
    "allowed": serializers.BooleanField(),
    "decidedBy": serializers.CharField(help_text="The kind of the step that decided."),
    "reason": serializers.CharField(help_text="One sentence, as in errors and the AUTHORIZATION_DENIED event."),
    "steps": inline_serializer("AuthzStep", fields=STEP_FIELDS, many=True),
    "policyIds": serializers.ListField(child=serializers.CharField()),
})


def find_member(org: Organization, value: str) -> Membership:
    """The membership of ``org`` named by an email (any case) or a membership id; :class:`NotFound` otherwise."""
    qs = Membership.objects.filter(org=org).select_related("org", "user")
    email_field = get_user_model().get_email_field_name()
    found = qs.filter(pk=int(value)).first() if value.isdigit() and len(value) < 18 else None
    if found is None and "@" in value:
        found = qs.filter(**{f"user__{email_field}__iexact": value}).first()
    if found is None:
        raise NotFound("No member with this email or id in your organization.")
    return found


def parse_resource(value: str, errors: dict[str, list[str]]) -> tuple[str, str] | None:
    rtype, sep, rid = value.partition(":")
    if not sep or not rtype or not rid:
        errors["resource"] = ['Write the resource as "type:id", such as "agent:agt_…".']
        return None
    if registry.get(rtype) is None:
        known = ", ".join(sorted(registry.all_types()))
        errors["resource"] = [f'There is no resource type "{rtype[:40]}"; choose {known}.']
        return None
    if rid == "*":
        errors["resource"] = ["Name one resource: a decision is about one resource, not a wildcard."]
        return None
    return rtype, rid


def parse_at(value: str, org: Organization, errors: dict[str, list[str]]) -> dt.datetime | None:
    try:
        when = parse_datetime(value)
    except ValueError:
        when = None
    if when is None:
        errors["at"] = ["Must be an ISO 8601 date and time, such as 2030-01-31T17:00:00Z."]
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(policy.effective(org)["timezone"]))
    return when.astimezone(dt.UTC)


class ExplainView(TwigAPIView):
    """Admins ask why a member may or may not act on a resource."""

    required_scopes = {"*": Scope.ADMIN}
    permission_classes = [HasPermission(Permission.AUTHZ_EXPLAIN)]

    @extend_schema(
        tags=["authorization"],
        summary="Explain a decision: why a member may or may not do an action on a resource (admin+)",
        parameters=[
            OpenApiParameter("member", str, required=True, description="The member's email or membership id."),
            OpenApiParameter("action", str, required=True, description="An action of the resource's type."),
            OpenApiParameter("resource", str, required=True, description='"type:id", such as "agent:agt_…".'),
            OpenApiParameter("at", str, description="ISO 8601 time to decide at (default now; without an offset "
                                                    "it is the org's time zone)."),
            OpenApiParameter("ip", str, description="The request IP that policies test (default none)."),
            OpenApiParameter("mfa", bool, description="Whether the request used MFA (default false)."),
        ],
        responses=DECISION,
    )
    def get(self, request: Request) -> Response:
        org = self.membership.org
        params = {k: request.query_params.get(k, "") for k in ("member", "action", "resource", "at", "ip", "mfa")}
        errors: dict[str, list[str]] = {}
        for name in ("member", "action", "resource"):
            if not params[name].strip():
                errors[name] = ["This parameter is required."]
        for name, value in params.items():
            if len(value) > MAX_PARAM or "\x00" in value:
                errors[name] = [f"Must be at most {MAX_PARAM} characters, without NUL."]
        parsed = None if "resource" in errors else parse_resource(params["resource"].strip(), errors)
        action = params["action"].strip()
        if parsed is not None and "action" not in errors:
            rtype = registry.get(parsed[0])
            assert rtype is not None
            if action not in rtype.actions:
                errors["action"] = [f'{parsed[0].replace("_", " ")} resources have no action "{action[:40]}"; '
                                    f'choose {", ".join(rtype.actions)}.']
        at = parse_at(params["at"].strip(), org, errors) if params["at"].strip() and "at" not in errors else None
        ip = self._ip(params["ip"].strip(), errors)
        mfa = params["mfa"].strip().lower()
        if mfa not in TRUE | FALSE:
            errors["mfa"] = ["Must be true or false."]
        if errors:
            raise InvalidInput(errors)
        assert parsed is not None
        member = find_member(org, params["member"].strip())
        resource = resolve_resource(org, f"{parsed[0]}:{parsed[1]}")
        context = RequestContext(actor=member.user, ip=ip, user_agent="explain", mfa_used=mfa in TRUE)
        decision = explain(member, action, resource, at=at, context=context)
        return Response(decision.as_dict())

    @staticmethod
    def _ip(value: str, errors: dict[str, list[str]]) -> str | None:
        if not value or "ip" in errors:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            errors["ip"] = ["Must be an IPv4 or IPv6 address."]
            return None
