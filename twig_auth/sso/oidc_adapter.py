"""django-allauth adapters for twig's per-org OIDC: apps come from SSO connections, logins end in twig's SSO
login service, and allauth never signs anyone up, in or out by itself.

* ``SocialAccountAdapter.get_app`` / ``list_apps`` build an unsaved ``SocialApp`` from the connection chosen by
  the login URL (kept in the session) or, for generic OIDC, named by the callback URL (its ``provider_id`` is the
  connection id). No ``SocialApp`` rows and no ``SOCIALACCOUNT_PROVIDERS`` apps are ever used.
* ``pre_social_login`` (allauth has validated state, PKCE, the code exchange and the ID token) turns the claims
  into an :class:`SsoIdentity` and answers with :func:`complete_sso_login`; allauth's own login, signup and
  account linking never run.
* ``on_authentication_error`` (IdP error such as ``access_denied``, unknown state, failed token exchange) answers
  with the audited "Authentication failed" page.
* ``AccountAdapter`` closes allauth's own signup: twig's login page and JIT provisioning are the only ways in.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter, get_adapter
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.base.constants import AuthError
from allauth.socialaccount.providers.google import views as google_views
from django.http import Http404, HttpRequest

from twig_auth.sso import oidc
from twig_auth.sso.login import complete_sso_login, sso_failed
from twig_auth.sso.models import Protocol, SsoConnection

VENDOR_PROVIDERS = ("google", "microsoft")


class AccountAdapter(DefaultAccountAdapter):
    """allauth's account side: closed. Accounts come from twig's signup or SSO JIT provisioning only."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Apps from SSO connections; every outcome ends in twig's SSO login service or failure page."""

    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        return False

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: Any) -> bool:
        return False

    def get_provider(self, request: HttpRequest, provider: str, client_id: str | None = None) -> Any:
        instance = super().get_provider(request, provider, client_id=client_id)
        if instance.id == "google":  # allauth's Google endpoints are import-time constants: follow the connection
            instance.oauth2_adapter_class = GoogleAdapter
        return instance

    def list_apps(self, request: HttpRequest, provider: str | None = None, client_id: str | None = None) -> list[Any]:
        connection = _connection_for(request, provider) if provider else None
        if connection is None:
            return []
        app = oidc.social_app(connection)
        return [] if client_id and app.client_id != client_id else [app]

    def get_app(self, request: HttpRequest, provider: str, client_id: str | None = None) -> Any:
        apps = self.list_apps(request, provider=provider, client_id=client_id)
        if not apps:  # no flow in this session / unknown connection: nothing to say
            raise Http404("No SSO connection for this sign-in.")
        return apps[0]

    def pre_social_login(self, request: HttpRequest, sociallogin: Any) -> None:
        provider = sociallogin.provider
        connection = _app_connection(provider.app)
        flow = request.session.pop(oidc.SESSION_KEY, None) or {}
        if connection is None:
            raise Http404("No SSO connection for this sign-in.")
        if flow.get("connection") != connection.pk:
            raise ImmediateHttpResponse(sso_failed(request, org=connection.org, connection=connection,
                                                   reason="state_mismatch",
                                                   detail="The sign-in was not started for this connection."))
        identity, reason = oidc.identity_from_claims(provider.id, sociallogin.account.extra_data or {},
                                                     connection.group_attribute)
        if identity is None:
            raise ImmediateHttpResponse(sso_failed(request, org=connection.org, connection=connection,
                                                   reason=reason, detail=_REASON_DETAILS.get(reason, "")))
        raise ImmediateHttpResponse(complete_sso_login(request, connection, identity, flow.get("next", "")))

    def on_authentication_error(self, request: HttpRequest, provider: Any, error: Any = None,
                                exception: Any = None, extra_context: Any = None) -> None:
        connection = _app_connection(getattr(provider, "app", None))
        if connection is None:
            raise Http404("No SSO connection for this sign-in.")
        request.session.pop(oidc.SESSION_KEY, None)
        reason, detail = _classify(request, error, exception, extra_context or {})
        raise ImmediateHttpResponse(sso_failed(request, org=connection.org, connection=connection,
                                               reason=reason, detail=detail))


class GoogleAdapter(google_views.GoogleOAuth2Adapter):
    """allauth's Google adapter with its endpoints from the connection's issuer (discovery) when it has one.

    allauth reads Google's URLs into module constants at import (``SOCIALACCOUNT_PROVIDERS["google"]``), so they
    cannot differ per org or change in tests; without an issuer this is exactly allauth's adapter."""

    def _discovery(self) -> dict[str, Any] | None:
        if not hasattr(self, "_twig_discovery"):
            issuer = self.get_provider().app.settings.get("issuer", "")
            config = None
            if issuer:
                with get_adapter().get_requests_session() as session:
                    response = session.get(f"{issuer}/.well-known/openid-configuration")
                    response.raise_for_status()
                    config = response.json()
            self._twig_discovery = config
        return self._twig_discovery

    def _endpoint(self, key: str, default: str) -> str:
        config = self._discovery()
        return config[key] if config else default

    @property  # type: ignore[override]
    def access_token_url(self) -> str:
        return self._endpoint("token_endpoint", google_views.ACCESS_TOKEN_URL)

    @property  # type: ignore[override]
    def authorize_url(self) -> str:
        return self._endpoint("authorization_endpoint", google_views.AUTHORIZE_URL)

    @property  # type: ignore[override]
    def identity_url(self) -> str:
        return self._endpoint("userinfo_endpoint", google_views.IDENTITY_URL)

    def _decode_id_token(self, app: Any, id_token: str) -> dict[str, Any]:
        config = self._discovery()
        if not config:
            return super()._decode_id_token(app, id_token)
        # Fetched straight from the token endpoint over the back channel: the signature check may be skipped
        # (OIDC Core 3.1.3.7), issuer, audience and expiry are still checked.
        return jwtkit.verify_and_decode(credential=id_token, keys_url=config["jwks_uri"], issuer=config["issuer"],
                                        audience=app.client_id, lookup_kid=jwtkit.lookup_kid_jwk,
                                        verify_signature=not self.did_fetch_access_token)


_REASON_DETAILS = {
    "no_email": "The IdP sent no email claim.",
    "email_unverified": "The IdP says the email address is not verified (email_verified is false).",
}


def _classify(request: HttpRequest, error: Any, exception: Any, extra: dict[str, Any]) -> tuple[str, str]:
    """A short audited reason and a secret-free detail (an IdP error code, an exception type; never a token)."""
    idp_error = request.GET.get("error", "")[:64]
    if error == AuthError.CANCELLED or idp_error == "access_denied":
        return "access_denied", "The user or the IdP refused the sign-in."
    if "state_id" in extra and "state" not in extra and exception is None:
        return "state_mismatch", "Unknown or already used state."
    if idp_error:
        return "idp_error", f"IdP error: {idp_error}"
    if exception is not None:
        return "token_error", type(exception).__name__
    return "invalid_response", "No authorization code."


def _app_connection(app: Any) -> SsoConnection | None:
    connection_id = (getattr(app, "settings", None) or {}).get("twig_connection")
    if not connection_id:
        return None
    return SsoConnection.objects.select_related("org").filter(pk=connection_id, protocol=Protocol.OIDC).first()


def _connection_for(request: HttpRequest | None, provider: str) -> SsoConnection | None:
    """The connection behind allauth's ``provider``: for google/microsoft, the one this session's sign-in
    started with; for generic OIDC, the connection whose id is the provider id (from the callback URL)."""
    if provider in VENDOR_PROVIDERS:
        flow = getattr(request, "session", {}).get(oidc.SESSION_KEY) if request is not None else None
        connection_id = (flow or {}).get("connection")
    elif isinstance(provider, str) and provider.startswith("sso_"):
        connection_id = provider
    else:
        return None
    if not connection_id:
        return None
    cache = getattr(request, "_twig_oidc_connections", None) if request is not None else None
    if cache is None:
        cache = {}
        if request is not None:
            request._twig_oidc_connections = cache  # type: ignore[attr-defined]
    if connection_id not in cache:
        cache[connection_id] = (SsoConnection.objects.select_related("org")
                                .filter(pk=connection_id, protocol=Protocol.OIDC).first())
    connection = cache[connection_id]
    if connection is None or oidc.allauth_provider(connection) != provider:
        return None
    return connection
