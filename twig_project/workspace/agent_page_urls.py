"""The Agents page, mounted at ``/agents/``."""

from __future__ import annotations

from django.urls import path

from twig_project.workspace import pages

urlpatterns = [
    path("", pages.agents, name="agents"),
    path("<str:pk>/model/", pages.change_model, name="agent_model"),
    path("<str:pk>/ask/", pages.ask, name="agent_ask"),
]
