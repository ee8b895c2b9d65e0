"""A base API view: JSON in and out, the request's membership at hand, scopes checked first."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from twig_auth.contrib.rest_framework.parsers import JSONParser
from twig_auth.contrib.rest_framework.permissions import HasScope, IsOrgMember, request_membership
from twig_auth.core.context import RequestContext
from twig_auth.orgs.models import Membership


class TwigAPIView(APIView):
    """Override :attr:`permission_classes` (role, resource) and :attr:`required_scopes` (API-key scope per
    HTTP method; none declared means ``admin``). :class:`HasScope` always runs first."""

    parser_classes = [JSONParser]
    permission_classes = [IsOrgMember]
    required_scopes: dict[str, str] | None = None

    def get_permissions(self) -> list[BasePermission]:
        return [HasScope(), *super().get_permissions()]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        # The browsable API may render successes for a browser; an error is JSON whatever was accepted.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    @property
    def membership(self) -> Membership:
        membership = request_membership(self.request)
        assert membership is not None, "permission classes admit members only"
        return membership

    def context(self) -> RequestContext:
        return RequestContext.from_request(self.request._request, actor=self.request.user)

    def validated(self, serializer_class: type[Serializer[Any]], data: Any) -> dict[str, Any]:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)
