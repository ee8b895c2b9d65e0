"""URLs of the API keys pages, included by ``twig_auth.urls`` under ``settings/api-keys/``."""

from __future__ import annotations

from django.urls import path

from twig_auth.apikeys import views

urlpatterns = [
    path("", views.api_keys, name="api_keys"),
    path("<str:key_pk>/revoke/", views.revoke, name="api_key_revoke"),
    path("<str:key_pk>/roll/", views.roll, name="api_key_roll"),
    path("<str:key_pk>/usage/", views.usage, name="api_key_usage"),
]
