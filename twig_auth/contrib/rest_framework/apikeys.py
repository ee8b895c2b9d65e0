"""``/api/api-keys``: list, create, revoke, roll, usage. A member manages their own keys; admins all of the org's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from twig_auth.apikeys import services
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.queries import usage_summary, visible_keys
from twig_auth.apikeys.scopes import ALL_SCOPES
from twig_auth.contrib.rest_framework.stepup import require_recent_mfa
from twig_auth.contrib.rest_framework.views import TwigAPIView
from twig_auth.core import clock
from twig_auth.exceptions import InvalidInput, PermissionDenied
from twig_auth.orgs.models import Membership


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    prefix = serializers.CharField(read_only=True)
    state = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    allowedIps = serializers.ListField(source="allowed_ips", child=serializers.CharField(), read_only=True)  # noqa: N815

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "environment", "created_at", "created_by", "expires_at",
                  "last_used_at", "last_used_ip", "revoked_at", "state", "rolled_from", "allowedIps"]
        read_only_fields = fields

    def get_state(self, obj: ApiKey) -> str:
        return obj.state(clock.now())

    def get_created_by(self, obj: ApiKey) -> str | None:
        creator = obj.created_by
        return getattr(creator.user, creator.user.get_email_field_name(), None) if creator else None


class CreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, trim_whitespace=True)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ALL_SCOPES), min_length=1, max_length=4)
    environment = serializers.ChoiceField(choices=["live", "test"])
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    allowedIps = serializers.JSONField(  # noqa: N815  (the contract's camelCase; checked by the service)
        required=False, help_text='CIDR ranges the key may be used from, e.g. ["203.0.113.0/24"] (enterprise).')



@contextmanager
def api_field_names() -> Iterator[None]:
    """Name the service's ``allowed_ips`` field ``allowedIps`` in errors, as the request spelled it."""
    try:
        yield
    except InvalidInput as exc:
        if "allowed_ips" in exc.errors:
            exc.errors["allowedIps"] = exc.errors.pop("allowed_ips")
        raise
    except PermissionDenied as exc:
        fields = exc.extra.get("fields")
        if isinstance(fields, list):
            exc.extra["fields"] = ["allowedIps" if f == "allowed_ips" else f for f in fields]
        raise


class RollSerializer(serializers.Serializer[Any]):
    expires_in = serializers.IntegerField(min_value=0, max_value=30 * 86400,
                                          help_text="Seconds the old key keeps working; 0 revokes it now.")


NEW_KEY = inline_serializer("NewApiKey", fields={
    "id": serializers.CharField(), "name": serializers.CharField(), "prefix": serializers.CharField(),
    "scopes": serializers.ListField(child=serializers.CharField()), "environment": serializers.CharField(),
    "created_at": serializers.DateTimeField(), "expires_at": serializers.DateTimeField(allow_null=True),
    "key": serializers.CharField(help_text="The full key. Present in this response only."),
})


def new_key_body(key: ApiKey, plaintext: str) -> dict[str, Any]:
    return {"id": key.pk, "name": key.name, "prefix": key.prefix, "scopes": key.scopes,
            "environment": key.environment, "created_at": key.created_at, "expires_at": key.expires_at,
            "key": plaintext}


class ApiKeyListView(TwigAPIView):
    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ApiKeySerializer(visible_keys(self.membership), many=True).data)

    @extend_schema(request=CreateSerializer, responses={201: NEW_KEY})
    def post(self, request: Request) -> Response:
        data = self.validated(CreateSerializer, request.data)
        allowed_ips = data.pop("allowedIps", None)
        creator = Membership.objects.select_related("org").get(pk=self.membership.pk)
        with api_field_names():
            if "admin" in data["scopes"]:
                services.validate_request(creator=creator, **data)  # a role that may not grant it hears so first
                services.clean_allowed_ips(allowed_ips, org=creator.org)
                require_recent_mfa(request)
            key, plaintext = services.issue_api_key(creator=creator, context=self.context(), allowed_ips=allowed_ips,
                                                    **data)
        return Response(new_key_body(key, plaintext), status=status.HTTP_201_CREATED)


class ApiKeyDetailView(TwigAPIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: str) -> Response:  # noqa: A002
        key = services.get_manageable(org_id=self.membership.org_id, key_pk=id, context=self.context())
        services.revoke_api_key(key=key, context=self.context())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyRollView(TwigAPIView):
    @extend_schema(request=RollSerializer, responses={201: NEW_KEY})
    def post(self, request: Request, id: str) -> Response:  # noqa: A002
        data = self.validated(RollSerializer, request.data)
        key = services.get_manageable(org_id=self.membership.org_id, key_pk=id, context=self.context())
        new, plaintext = services.roll_api_key(key=key, expires_in=data["expires_in"], context=self.context())
        return Response(new_key_body(new, plaintext), status=status.HTTP_201_CREATED)


class ApiKeyUsageView(TwigAPIView):
    @extend_schema(responses=inline_serializer("ApiKeyUsage", fields={
        "id": serializers.CharField(), "last_used_at": serializers.DateTimeField(allow_null=True),
        "last_used_ip": serializers.CharField(allow_null=True), "total": serializers.IntegerField(),
        "days": serializers.ListField(child=serializers.DictField()),
        "endpoints": serializers.ListField(child=serializers.DictField())}))
    def get(self, request: Request, id: str) -> Response:  # noqa: A002
        key = services.get_manageable(org_id=self.membership.org_id, key_pk=id, context=self.context())
        return Response(usage_summary(key))
