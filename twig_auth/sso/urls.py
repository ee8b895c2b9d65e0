"""URLs of SSO, included under ``sso/``."""

from __future__ import annotations

from django.urls import path

from twig_auth.sso import oidc, saml_flow, views

urlpatterns = [
    path("saml/<slug:org_slug>/metadata/", views.sp_metadata, name="sso_saml_metadata"),
    path("saml/<slug:org_slug>/login/", saml_flow.SamlLoginView.as_view(), name="sso_saml_login"),
    path("saml/<slug:org_slug>/acs/", saml_flow.SamlAcsView.as_view(), name="sso_saml_acs"),
    # The OIDC callbacks are allauth's, mounted by the project at sso/oidc/accounts/ (twig_auth.sso.oidc_urls).
    path("oidc/<slug:org_slug>/login/", oidc.OidcLoginView.as_view(), name="sso_oidc_login"),
]
