"""URL of the access-review page, included under ``settings/security/``."""

from __future__ import annotations

from django.urls import path

from twig_auth.reviews import views

urlpatterns = [
    path("access-review/", views.access_review, name="access_review"),
]
