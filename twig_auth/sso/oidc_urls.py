"""allauth's OAuth/OIDC callbacks, and nothing else of allauth, for twig's per-org OIDC login.

Include at the project root WITHOUT a namespace (allauth reverses ``google_callback`` and friends by bare name)::

    path("sso/oidc/accounts/", include("twig_auth.sso.oidc_urls")),

Redirect URIs to register at the IdP: ``/sso/oidc/accounts/google/login/callback/``,
``/sso/oidc/accounts/microsoft/login/callback/`` and ``/sso/oidc/accounts/oidc/<connection id>/login/callback/``
(see :func:`twig_auth.sso.oidc.redirect_uri`). allauth's login, signup and account pages are not mounted: the
sign-in starts at ``/sso/oidc/<org slug>/login/``.

Google's callback uses :class:`twig_auth.sso.oidc_adapter.GoogleAdapter` (endpoints from the connection).
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.providers.microsoft import views as microsoft_views
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView
from allauth.socialaccount.providers.openid_connect import views as oidc_views
from django.urls import path
from django.views.decorators.cache import never_cache

from twig_auth.mfa.middleware import mfa_exempt
from twig_auth.sso.oidc_adapter import GoogleAdapter


def _callback(view: Any) -> Any:
    return mfa_exempt(never_cache(view))


urlpatterns = [
    path("google/login/callback/", _callback(OAuth2CallbackView.adapter_view(GoogleAdapter)),
         name="google_callback"),
    path("microsoft/login/callback/", _callback(microsoft_views.oauth2_callback), name="microsoft_callback"),
    path("oidc/<str:provider_id>/login/callback/", _callback(oidc_views.callback), name="openid_connect_callback"),
]
