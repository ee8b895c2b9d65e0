"""URLs of the IP allowlist pages, included under ``settings/security/``."""

from __future__ import annotations

from django.urls import path

from twig_auth.netaccess import views

urlpatterns = [
    path("ip-allowlist/", views.ip_allowlist, name="ip_allowlist"),
    path("access-logs/", views.access_logs, name="access_logs"),
    path("access-logs/download/", views.access_logs_download, name="access_logs_download"),
]
