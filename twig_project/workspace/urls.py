"""Routes of the reference API, mounted at ``/api/``.

Paths have no trailing slash (``/api/agents/agt_…``); the same path with one is accepted too, and left
out of the OpenAPI schema.
"""

from __future__ import annotations

from django.urls import URLPattern, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.views import APIView

from twig_auth.contrib.rest_framework import schema as _schema  # noqa: F401  (registers the auth schemes)
from twig_project.workspace import views

routes: list[tuple[str, type[APIView], str]] = [
    ("agents", views.AgentListView, "agent-list"),
    ("agents/<str:pk>", views.AgentDetailView, "agent-detail"),
    ("agents/<str:pk>/deploy", views.AgentDeployView, "agent-deploy"),
    ("data-sources", views.DataSourceListView, "data-source-list"),
    ("data-sources/<str:pk>", views.DataSourceDetailView, "data-source-detail"),
    ("data-sources/<str:pk>/sync", views.DataSourceSyncView, "data-source-sync"),
    ("interactions", views.InteractionListView, "interaction-list"),
    ("query", views.QueryView, "query"),
    ("chat", views.ChatView, "chat"),
    ("org/settings", views.OrgSettingsView, "org-settings"),
]

urlpatterns: list[URLPattern] = [
    *(path(route, view.as_view(), name=name) for route, view, name in routes),
    *(path(f"{route}/", view.as_view(schema=None)) for route, view, _ in routes),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("schema/", SpectacularAPIView.as_view(schema=None)),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema", schema=None)),
]
