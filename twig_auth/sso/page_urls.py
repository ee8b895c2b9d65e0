"""Settings → Authentication, included under ``settings/authentication/``."""

from __future__ import annotations

from django.urls import path

from twig_auth.sso import pages

urlpatterns = [
    path("", pages.authentication_settings, name="authentication_settings"),
    path("enabled/", pages.connection_enabled, name="authentication_enabled"),
    path("enforce/", pages.enforce, name="authentication_enforce"),
    path("domains/", pages.domain_add, name="authentication_domain_add"),
    path("domains/<int:pk>/verify/", pages.domain_verify, name="authentication_domain_verify"),
]
