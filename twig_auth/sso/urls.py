"""URLs of SSO, included under ``sso/``."""

from __future__ import annotations

from django.urls import path

from twig_auth.sso import views

urlpatterns = [
    path("saml/<slug:org_slug>/metadata/", views.sp_metadata, name="sso_saml_metadata"),
    # The ACS is named now so the SP metadata can point at it; next session's login flow answers there.
    path("saml/<slug:org_slug>/acs/", views.acs_not_ready, name="sso_saml_acs"),
]
