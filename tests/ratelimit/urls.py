"""A trivial API view behind the project's default authentication, permission and throttle classes."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from twig_auth.contrib.rest_framework.permissions import HasScope


class Ping(APIView):
    permission_classes = [HasScope]
    required_scopes = {"GET": "read"}

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [path("ping", Ping.as_view()), path("api/", include("twig_auth.contrib.rest_framework.urls"))]
