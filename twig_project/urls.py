"""URLs of the reference project: twig_auth pages, the admin, the reference API and its docs."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from twig_project import views

urlpatterns = [
    path("", views.home, name="home"),
    # The admin signs in through the lockout-guarded login page.
    path("admin/login/", RedirectView.as_view(url="/login/", query_string=True)),
    path("admin/", admin.site.urls),
    path("api/", include("twig_auth.contrib.rest_framework.urls")),
    path("api/", include("twig_project.workspace.urls")),
    path("agents/", include("twig_project.workspace.agent_page_urls")),
    path("data-sources/", include("twig_project.workspace.source_page_urls")),
    # allauth's OIDC callbacks, unnamespaced (allauth reverses them by bare name); nothing else of allauth.
    path("sso/oidc/accounts/", include("twig_auth.sso.oidc_urls")),
    path("", include("twig_auth.urls")),
]

handler404 = "twig_project.views.not_found"
handler500 = "twig_project.views.server_error"
