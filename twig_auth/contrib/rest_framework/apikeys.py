"""``/api/api-keys``: list, create, revoke, roll, usage. A member manages their own keys; admins all of the org's."""

from __future__ import annotations

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
from twig_auth.orgs.models import Membership


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    prefix = serializers.CharField(read_only=True)
    state = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "environment", "created_at", "created_by", "expires_at",
                  "last_used_at", "last_used_ip", "revoked_at", "state", "rolled_from"]
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
        creator = Membership.objects.select_related("org").get(pk=self.membership.pk)
        if "admin" in data["scopes"]:
            services.validate_request(creator=creator, **data)  # a role that may not grant it hears so first
            require_recent_mfa(request)
        key, plaintext = services.issue_api_key(creator=creator, context=self.context(), **data)
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
