"""URL of the connectors' OAuth callback, included under ``connectors/``."""

from __future__ import annotations

from django.urls import path

from twig_auth.connectors import views

urlpatterns = [
    path("callback/", views.callback, name="connector_callback"),
]
