"""URLs of Settings → External API keys, included by ``twig_auth.urls`` under ``settings/external-api-keys/``."""

from __future__ import annotations

from django.urls import path

from twig_auth.providerkeys import views

urlpatterns = [
    path("", views.external_api_keys, name="external_api_keys"),
    path("add/", views.add, name="external_api_key_add"),
    path("<str:key_pk>/replace/", views.replace, name="external_api_key_replace"),
    path("<str:key_pk>/delete/", views.delete, name="external_api_key_delete"),
]
