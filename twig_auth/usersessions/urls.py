"""URLs of the sessions pages, included by ``twig_auth.urls`` under ``settings/sessions/``."""

from __future__ import annotations

from django.urls import path

from twig_auth.usersessions import views

urlpatterns = [
    path("", views.sessions, name="sessions"),
    path("member/<str:membership_id>/", views.member_sessions, name="member_sessions"),
]
