"""Bench-only URLconf (``bench/settings_http.py``): one trivial DRF view behind three kinds of guard.

* ``/ours``: ``ApiKeyAuthentication`` + ``HasScope`` + ``IsOrgMember`` (what ``TwigAPIView`` runs; the view
  needs ``read``), ``Authorization: Bearer …``;
* ``/ours-isauth``: the same with DRF's ``IsAuthenticated`` in place of ``IsOrgMember`` (the project's
  ``DEFAULT_PERMISSION_CLASSES``), which evaluates ``bool(request.user)``;
* ``/none``: no authentication, ``AllowAny`` (the ceiling);
* ``/hasapikey``: djangorestframework-api-key's ``HasAPIKey``, ``Authorization: Api-Key …``;
* ``/ours-throttled``: ``/ours`` plus twig_auth's ``ScopeRateThrottle`` (a bucket per key and scope class, the
  ``X-RateLimit-*`` headers on the answer);
* ``/hasapikey-throttled``: ``/hasapikey`` plus DRF's ``ScopedRateThrottle`` (``throttle_scope = "read"``).

The throttled views get rates no measurement reaches from ``bench/settings_http.py``.

Every view renders the same constant with ``JSONRenderer`` only, so the guard is the only difference.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey

from twig_auth.contrib.rest_framework.authentication import ApiKeyAuthentication
from twig_auth.contrib.rest_framework.permissions import HasScope, IsOrgMember
from twig_auth.contrib.rest_framework.throttling import ScopeRateThrottle

BODY = {"ok": True, "items": [1, 2, 3]}


class Constant(APIView):
    renderer_classes = [JSONRenderer]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(BODY)


class Ours(Constant):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope, IsOrgMember]
    required_scopes = {"GET": "read"}


class OursIsAuthenticated(Ours):
    permission_classes = [HasScope, IsAuthenticated]


class NoAuth(Constant):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]


class NoAuthOneRedisGet(NoAuth):
    """``/none`` plus one raw Redis ``GET``: the ceiling of any design that keeps its limits in Redis."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        from twig_auth.core.redis import get_redis

        get_redis().get("twig:bench:probe")
        return Response(BODY)


class Peer(Constant):
    authentication_classes: list[Any] = []
    permission_classes = [HasAPIKey]


class OursThrottled(Ours):
    throttle_classes = [ScopeRateThrottle]


class PeerThrottled(Peer):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "read"


urlpatterns = [
    path("ours", Ours.as_view()),
    path("ours-isauth", OursIsAuthenticated.as_view()),
    path("none", NoAuth.as_view()),
    path("none-redis-get", NoAuthOneRedisGet.as_view()),
    path("hasapikey", Peer.as_view()),
    path("ours-throttled", OursThrottled.as_view()),
    path("hasapikey-throttled", PeerThrottled.as_view()),
]
