"""API routes of twig_auth itself. Include with ``path("api/", include("twig_auth.contrib.rest_framework.urls"))``."""

from __future__ import annotations

from django.urls import path

from twig_auth.contrib.rest_framework import access, apikeys, explain, sessions, tokens
from twig_auth.contrib.rest_framework import audit as audit_api

urlpatterns = [
    path("auth/token", tokens.TokenObtainView.as_view(), name="twig-token"),
    path("auth/token/refresh", tokens.TokenRefreshView.as_view(), name="twig-token-refresh"),
    path("auth/token/revoke", tokens.TokenRevokeView.as_view(), name="twig-token-revoke"),
    path("auth/logout", sessions.LogoutView.as_view(), name="twig-logout"),
    path("api-keys", apikeys.ApiKeyListView.as_view(), name="twig-api-keys"),
    path("api-keys/<str:id>", apikeys.ApiKeyDetailView.as_view(), name="twig-api-key"),
    path("api-keys/<str:id>/roll", apikeys.ApiKeyRollView.as_view(), name="twig-api-key-roll"),
    path("api-keys/<str:id>/usage", apikeys.ApiKeyUsageView.as_view(), name="twig-api-key-usage"),
    path("authz/explain", explain.ExplainView.as_view(), name="twig-authz-explain"),
    path("audit-events", audit_api.AuditEventListView.as_view(), name="twig-audit-events"),
    path("grants", access.GrantListView.as_view(), name="twig-grants"),
    path("grants/<str:id>", access.GrantDetailView.as_view(), name="twig-grant"),
    path("policies", access.PolicyListView.as_view(), name="twig-policies"),
    path("policies/<str:id>", access.PolicyDetailView.as_view(), name="twig-policy"),
]
