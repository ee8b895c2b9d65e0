"""``/api/grants`` and ``/api/policies``: thin over :mod:`twig_auth.authz.services`. API keys need ``admin``.

Grants:

- ``GET /api/grants``: the org's grants, newest first (admins: ``grants.manage``);
- ``POST /api/grants`` ``{resource: "agent:agt_…" | "agent:*", action, user: <email> | group: <id or name>,
  expires_at?, access_control?}`` → 201 (admins, or a member who manages the resource);
- ``DELETE /api/grants/{id}`` → 204, revoked (the same people).

Policies (ABAC; ``policies.manage``): ``GET|POST /api/policies``, ``GET|PUT|DELETE /api/policies/{id}``. A
policy is ``{id, name, description, enabled, policy: {resource, action, effect, conditions, …}}``, so the
validator's error paths (``policy.conditions.2.time.hour``) name the request's fields. Creating and changing need
the enterprise plan (403 ``permission_denied`` otherwise); listing, reading and deleting work on every plan, so
policies left from before a downgrade (which no longer apply) can be cleaned up.

Every validation problem answers 400 ``invalid`` naming each field (``errors``).
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from twig_auth.apikeys.scopes import Scope
from twig_auth.authz import services
from twig_auth.authz.matrix import Permission
from twig_auth.authz.models import Grant, Policy
from twig_auth.contrib.rest_framework.authz import HasPermission
from twig_auth.contrib.rest_framework.views import TwigAPIView
from twig_auth.core import clock
from twig_auth.exceptions import InvalidInput, NotFound
from twig_auth.orgs.models import Group, Membership, Organization

OPAQUE_ID = re.compile(r"[A-Za-z0-9_]{1,64}")
Errors = dict[str, list[str]]


def _email(user: Any) -> str | None:
    return getattr(user, get_user_model().get_email_field_name(), None) if user is not None else None


def get_in_org(queryset: QuerySet[Any], pk: str) -> Any:
    obj = queryset.filter(pk=pk).first() if OPAQUE_ID.fullmatch(pk) else None
    if obj is None:
        raise NotFound()
    return obj


def body_of(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise InvalidInput({"non_field_errors": ["Expected a JSON object."]})
    return data


# --- grants ----------------------------------------------------------------------------------------------


class GrantSerializer(serializers.ModelSerializer[Grant]):
    resource = serializers.CharField(read_only=True, help_text='"type:id", or "type:*" for every resource of it.')
    user = serializers.SerializerMethodField()
    group_name = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    live = serializers.SerializerMethodField()

    class Meta:
        model = Grant
        fields = ["id", "resource", "resource_type", "resource_id", "action", "user", "group", "group_name",
                  "expires_at", "access_control", "live", "created_by", "created_at"]
        read_only_fields = fields

    def get_user(self, obj: Grant) -> str | None:
        return _email(obj.user)

    def get_group_name(self, obj: Grant) -> str | None:
        return obj.group.name if obj.group_id else None

    def get_created_by(self, obj: Grant) -> str | None:
        return _email(obj.created_by)

    def get_live(self, obj: Grant) -> bool:
        return obj.expires_at is None or obj.expires_at > clock.now()


@extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
class LooseDateTimeField(serializers.CharField):
    """A date and time passed on as given: the service checks it (time zone required, in the future)."""


class GrantCreateSerializer(serializers.Serializer[Any]):
    resource = serializers.CharField(max_length=120, help_text='"agent:agt_…", or "agent:*" for every agent.')
    action = serializers.CharField(max_length=40)
    user = serializers.CharField(required=False, allow_null=True, max_length=254, help_text="A member's email.")
    group = serializers.CharField(required=False, allow_null=True, max_length=150,
                                  help_text="A group of your organization: its id or its name.")
    expires_at = LooseDateTimeField(required=False, allow_null=True, allow_blank=True)
    access_control = serializers.JSONField(required=False, allow_null=True,
                                           help_text='{"allowedHours": {"start": 9, "end": 17, "timezone": …}, '
                                                     '"allowedDays": [1, 2, 3, 4, 5]}')


def _grantee(org: Organization, data: dict[str, Any], errors: Errors) -> tuple[Any, Group | None]:
    user_ref, group_ref = data.get("user") or None, data.get("group") or None
    if (user_ref is None) == (group_ref is None):
        message = "Grant to one member (user) or one group (group)." if user_ref is None else \
            "Grant to a member or to a group, not both."
        errors["user" if user_ref is None else "group"] = [message]
        return None, None
    if user_ref is not None:
        field = get_user_model().get_email_field_name()
        membership = (Membership.objects.filter(org=org, **{f"user__{field}__iexact": user_ref.strip()})
                      .select_related("user").first())
        if membership is None:
            errors["user"] = ["No member with this email in your organization."]
            return None, None
        return membership.user, None
    groups = Group.objects.filter(org=org)
    group = groups.filter(pk=int(group_ref)).first() if group_ref.isdigit() and len(group_ref) < 18 else None
    group = group or groups.filter(name=group_ref).first()
    if group is None:
        errors["group"] = ["No group with this id or name in your organization."]
    return None, group


def _resource(value: str, errors: Errors) -> tuple[str, str]:
    rtype, sep, rid = value.strip().partition(":")
    if not sep or not rtype or not rid:
        errors["resource"] = ['Write the resource as "type:id", or "type:*" for all of its type (such as "agent:*").']
    return rtype, rid


def _renamed(errors: Errors) -> Errors:
    """The service's field names -> the request's."""
    names = {"resource_type": "resource", "resource_id": "resource", "grantee": "user"}
    out: Errors = {}
    for key, messages in errors.items():
        out.setdefault(names.get(key, key), []).extend(messages)
    return out


class GrantListView(TwigAPIView):
    required_scopes = {"*": Scope.ADMIN}
    permission_classes = [HasPermission(Permission.GRANTS_MANAGE, methods={"GET"})]

    @extend_schema(tags=["authorization"], responses=GrantSerializer(many=True),
                   summary="List your organization's resource grants, newest first (admin+)")
    def get(self, request: Request) -> Response:
        grants = (Grant.objects.filter(org_id=self.membership.org_id)
                  .select_related("user", "group", "created_by").order_by("-created_at", "id"))
        return Response(GrantSerializer(grants, many=True).data)

    @extend_schema(tags=["authorization"], request=GrantCreateSerializer, responses={201: GrantSerializer},
                   summary="Grant an action on a resource (or on all of a type) to a member or a group "
                           "(admin+, or the resource's manager)")
    def post(self, request: Request) -> Response:
        data = self.validated(GrantCreateSerializer, body_of(request))
        org = self.membership.org
        errors: Errors = {}
        rtype, rid = _resource(data["resource"], errors)
        user, group = _grantee(org, data, errors)
        if errors:
            raise InvalidInput(errors)
        try:
            grant = services.grant_permission(org=org, resource_type=rtype, resource_id=rid, action=data["action"],
                                              user=user, group=group, expires_at=data.get("expires_at") or None,
                                              access_control=data.get("access_control"), context=self.context())
        except InvalidInput as exc:
            raise InvalidInput(_renamed(exc.errors)) from None
        grant = Grant.objects.select_related("user", "group", "created_by").get(pk=grant.pk)
        return Response(GrantSerializer(grant).data, status=status.HTTP_201_CREATED)


class GrantDetailView(TwigAPIView):
    required_scopes = {"*": Scope.ADMIN}

    @extend_schema(tags=["authorization"], responses={204: None},
                   summary="Revoke a grant (admin+, or the resource's manager)")
    def delete(self, request: Request, id: str) -> Response:  # noqa: A002
        grant = get_in_org(Grant.objects.filter(org_id=self.membership.org_id), id)
        services.revoke_permission(grant=grant, context=self.context())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- policies --------------------------------------------------------------------------------------------


class PolicySerializer(serializers.ModelSerializer[Policy]):
    policy = serializers.SerializerMethodField()
    updated_by = serializers.SerializerMethodField()

    class Meta:
        model = Policy
        fields = ["id", "name", "description", "enabled", "policy", "created_at", "updated_at", "updated_by"]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "description": "{resource, action, effect, conditions, timezone?}"})
    def get_policy(self, obj: Policy) -> dict[str, Any]:
        return dict((obj.document or {}).get("policy") or {})

    def get_updated_by(self, obj: Policy) -> str | None:
        return _email(obj.updated_by)


POLICY_INPUT = inline_serializer("PolicyInput", fields={
    "name": serializers.CharField(max_length=100),
    "description": serializers.CharField(required=False, allow_blank=True, max_length=500),
    "enabled": serializers.BooleanField(required=False, default=True),
    "policy": inline_serializer("PolicyDocument", fields={
        "resource": serializers.CharField(help_text='"agent:agt_…", "agent:*" or "*".'),
        "action": serializers.CharField(help_text='An action of the resource type, or "*".'),
        "effect": serializers.ChoiceField(choices=["allow", "deny"]),
        "conditions": serializers.ListField(child=serializers.DictField(), required=False, max_length=32,
                                            help_text='ANDed, such as [{"user.role": "manager"}, '
                                                      '{"time.hour": {">=": 9, "<": 17}}].'),
        "timezone": serializers.CharField(required=False, help_text="Of time.* conditions (default: the org's)."),
        "description": serializers.CharField(required=False, allow_blank=True, max_length=500),
    }, help_text='{"resource": "agent:agt_…", "action": "use", "effect": "allow", '
                 '"conditions": [{"user.role": "manager"}]}'),
})


def policy_fields(body: dict[str, Any]) -> dict[str, Any]:
    """A request body -> the service's fields (every one given: POST and PUT replace the whole policy)."""
    return {"name": body.get("name"), "description": body.get("description", ""),
            "enabled": body.get("enabled", True), "document": {"policy": body.get("policy")}}


def _policy_errors(exc: InvalidInput) -> InvalidInput:
    out: Errors = {}
    for key, messages in exc.errors.items():
        out.setdefault("policy" if key == "document" else key, []).extend(messages)
    return InvalidInput(out)


def _policies(membership: Any) -> QuerySet[Policy]:
    return Policy.objects.filter(org_id=membership.org_id).select_related("updated_by")


class PolicyListView(TwigAPIView):
    required_scopes = {"*": Scope.ADMIN}
    permission_classes = [HasPermission(Permission.POLICIES_MANAGE)]

    @extend_schema(tags=["authorization"], responses=PolicySerializer(many=True),
                   summary="List your organization's ABAC policies (admin+)")
    def get(self, request: Request) -> Response:
        return Response(PolicySerializer(_policies(self.membership).order_by("name"), many=True).data)

    @extend_schema(tags=["authorization"], request=POLICY_INPUT, responses={201: PolicySerializer},
                   summary="Create an ABAC policy (admin+, enterprise)")
    def post(self, request: Request) -> Response:
        try:
            policy = services.create_policy(org=self.membership.org, **policy_fields(body_of(request)),
                                            context=self.context())
        except InvalidInput as exc:
            raise _policy_errors(exc) from None
        return Response(PolicySerializer(_policies(self.membership).get(pk=policy.pk)).data,
                        status=status.HTTP_201_CREATED)


class PolicyDetailView(TwigAPIView):
    required_scopes = {"*": Scope.ADMIN}
    permission_classes = [HasPermission(Permission.POLICIES_MANAGE)]

    def get_policy(self, pk: str) -> Policy:
        return get_in_org(_policies(self.membership), pk)

    @extend_schema(tags=["authorization"], responses=PolicySerializer, summary="Show an ABAC policy (admin+)")
    def get(self, request: Request, id: str) -> Response:  # noqa: A002
        return Response(PolicySerializer(self.get_policy(id)).data)

    @extend_schema(tags=["authorization"], request=POLICY_INPUT, responses=PolicySerializer,
                   summary="Replace an ABAC policy (admin+, enterprise)")
    def put(self, request: Request, id: str) -> Response:  # noqa: A002
        policy = self.get_policy(id)
        try:
            services.update_policy(policy=policy, **policy_fields(body_of(request)), context=self.context())
        except InvalidInput as exc:
            raise _policy_errors(exc) from None
        return Response(PolicySerializer(self.get_policy(id)).data)

    @extend_schema(tags=["authorization"], responses={204: None}, summary="Delete an ABAC policy (admin+)")
    def delete(self, request: Request, id: str) -> Response:  # noqa: A002
        services.delete_policy(policy=self.get_policy(id), context=self.context())
        return Response(status=status.HTTP_204_NO_CONTENT)
