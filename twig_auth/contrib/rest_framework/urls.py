"""API routes of twig_auth itself. Include with ``path("api/", include("twig_auth.contrib.rest_framework.urls"))``."""

from __future__ import annotations

from django.urls import path

from twig_auth.contrib.rest_framework import apikeys

urlpatterns = [
    path("api-keys", apikeys.ApiKeyListView.as_view(), name="twig-api-keys"),
    path("api-keys/<str:id>", apikeys.ApiKeyDetailView.as_view(), name="twig-api-key"),
    path("api-keys/<str:id>/roll", apikeys.ApiKeyRollView.as_view(), name="twig-api-key-roll"),
    path("api-keys/<str:id>/usage", apikeys.ApiKeyUsageView.as_view(), name="twig-api-key-usage"),
]
