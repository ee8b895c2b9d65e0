"""Pages of twig_auth. Include with ``path("", include("twig_auth.urls"))``."""

from __future__ import annotations

from django.urls import include, path

from twig_auth.orgs import views as org_views
from twig_auth.passwords import views
from twig_auth.sso import pages as sso_pages

app_name = "twig_auth"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/sso/", sso_pages.discover, name="sso_discover"),
    path("logout/", views.logout_view, name="logout"),
    path("password/change/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("password/reset/complete/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("organizations/choose/", org_views.choose_org, name="choose_org"),
    path("settings/api-keys/", include("twig_auth.apikeys.urls")),
    path("settings/sessions/", include("twig_auth.usersessions.urls")),
    path("settings/security/", org_views.security_settings, name="security_settings"),
    path("settings/security/", include("twig_auth.netaccess.urls")),
    path("settings/security/", include("twig_auth.reviews.urls")),
    path("settings/access/", include("twig_auth.authz.urls")),
    path("settings/authentication/", include("twig_auth.sso.page_urls")),
    path("settings/external-api-keys/", include("twig_auth.providerkeys.urls")),
    path("", include("twig_auth.mfa.urls")),
    path("sso/", include("twig_auth.sso.urls")),
    path("connectors/", include("twig_auth.connectors.urls")),
]
