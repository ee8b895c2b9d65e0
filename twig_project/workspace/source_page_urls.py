"""The Data sources page, mounted at ``/data-sources/``."""

from __future__ import annotations

from django.urls import path

from twig_project.workspace import source_pages

urlpatterns = [
    path("", source_pages.data_sources, name="data_sources"),
    path("<str:pk>/connect/", source_pages.connect, name="data_source_connect"),
    path("<str:pk>/disconnect/", source_pages.disconnect, name="data_source_disconnect"),
    path("<str:pk>/sync/", source_pages.sync, name="data_source_sync"),
]
