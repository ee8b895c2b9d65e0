"""OpenID Connect / OAuth login per org through django-allauth's providers.

``/sso/oidc/<slug>/login/`` picks the org's OIDC connection, remembers it in the session and sends the browser to
the IdP (authorization code + PKCE S256 + allauth's state). allauth validates the callback (state, code exchange,
ID token) at ``/sso/oidc/accounts/…/login/callback/``; :mod:`twig_auth.sso.oidc_adapter` then turns the claims
into an :class:`SsoIdentity` and hands it to the shared login service — allauth never signs anyone in itself.

Provider per connection: Google Workspace → allauth's ``google``; Microsoft Entra ID → ``microsoft``; Okta,
OneLogin and custom → ``openid_connect`` with the connection's issuer (its allauth ``provider_id`` is the
connection id, so each connection has its own redirect URI). Google's and Microsoft's endpoints follow the
connection's issuer when one is set (a sovereign cloud, a tenant, or the test OP), else the vendor's.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache

from twig_auth.mfa.middleware import mfa_exempt
from twig_auth.sso.login import SsoIdentity, sso_failed, unavailable
from twig_auth.sso.models import OidcProvider, Protocol, SsoConnection

logger = logging.getLogger("twig_auth.sso")

SESSION_KEY = "twig_sso_oidc"  # {"connection": id, "next": url, "test": bool} between login start and callback
OPENID_CONNECT = "openid_connect"
SCOPES = {
    "google": ["openid", "profile", "email"],
    "microsoft": ["openid", "profile", "email", "User.Read"],
    OPENID_CONNECT: ["openid", "profile", "email"],
}
MICROSOFT_LOGIN_HOST = "login.microsoftonline.com"
# amr values (RFC 8176 and vendors') that mean more than one factor was used.
MFA_AMR = frozenset({"mfa", "otp", "hwk", "swk", "sms", "tel", "fpt", "face", "iris", "retina", "vbm", "sc",
                     "pop", "ngcmfa", "rsa"})


def allauth_provider(connection: SsoConnection) -> str:
    """The allauth provider id (``google``, ``microsoft``) or, for generic OIDC, the sub-provider id used in URLs
    and ``get_app`` lookups: the connection id."""
    if connection.oidc_provider == OidcProvider.GOOGLE:
        return "google"
    if connection.oidc_provider == OidcProvider.MICROSOFT:
        return "microsoft"
    return connection.pk


def redirect_uri(request: HttpRequest, connection: SsoConnection) -> str:
    """The redirect (callback) URI to register at the IdP for ``connection``."""
    key = allauth_provider(connection)
    path = (reverse(f"{key}_callback") if key in ("google", "microsoft")
            else reverse("openid_connect_callback", kwargs={"provider_id": key}))
    return request.build_absolute_uri(path)


def social_app(connection: SsoConnection) -> Any:
    """An unsaved allauth ``SocialApp`` built from the connection (client id, secret, endpoints). Never stored:
    the connection is the one source of truth and its secret stays in one table."""
    from allauth.socialaccount.models import SocialApp

    settings: dict[str, Any] = {"oauth_pkce_enabled": True, "twig_connection": connection.pk}
    issuer = connection.oidc_issuer.rstrip("/")
    key = allauth_provider(connection)
    if key == "google":
        app = SocialApp(provider="google", name=connection.name)
        if issuer:
            settings["issuer"] = issuer
    elif key == "microsoft":
        app = SocialApp(provider="microsoft", name=connection.name)
        settings.update(_microsoft_settings(issuer))
    else:
        app = SocialApp(provider=OPENID_CONNECT, provider_id=key, name=connection.name)
        settings["server_url"] = issuer
    app.client_id = connection.oidc_client_id
    app.secret = connection.oidc_client_secret
    app.settings = settings
    return app


def _microsoft_settings(issuer: str) -> dict[str, str]:
    """allauth's microsoft provider takes ``login_url``, ``tenant`` and ``graph_url``. A Microsoft issuer
    (``https://login.microsoftonline.com/<tenant>/v2.0``) names the tenant; any other issuer hosts the whole
    Microsoft-shaped API (the test OP, a proxy)."""
    if not issuer:
        return {"tenant": "organizations"}
    parts = urlsplit(issuer)
    if parts.hostname == MICROSOFT_LOGIN_HOST:
        tenant = parts.path.strip("/").split("/")[0] or "organizations"
        return {"tenant": tenant}
    return {"login_url": issuer, "graph_url": issuer, "tenant": "common"}


def oidc_connection(org_slug: str, connection_id: str = "") -> SsoConnection:
    """The org's OIDC connection (a given one, or its first enabled one); 404 when there is none."""
    connections = (SsoConnection.objects.select_related("org")
                   .filter(org__slug=org_slug, protocol=Protocol.OIDC).order_by("-enabled", "name"))
    if connection_id:
        connections = connections.filter(pk=connection_id)
    connection = connections.first()
    if connection is None:
        raise Http404("No OIDC connection for this organization.")
    return connection


def _unavailable(request: HttpRequest, connection: SsoConnection) -> HttpResponse | None:
    configured = bool(connection.oidc_client_id) and (allauth_provider(connection) != connection.pk
                                                      or bool(connection.oidc_issuer))
    return unavailable(request, connection, configured=configured, missing="No client id or issuer.")


@method_decorator([mfa_exempt, never_cache], name="dispatch")
class OidcLoginView(View):
    """Send the user to the org's OpenID provider (``?next=`` is where the login lands afterwards)."""

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        from allauth.socialaccount.adapter import get_adapter
        from allauth.socialaccount.providers.base.constants import AuthProcess

        connection = oidc_connection(org_slug, request.GET.get("connection", ""))
        refused = _unavailable(request, connection)
        if refused is not None:
            return refused
        request.session[SESSION_KEY] = {"connection": connection.pk, "next": request.GET.get("next", "")[:2000],
                                        "test": request.GET.get("test") == "1"}
        key = allauth_provider(connection)
        try:
            provider = get_adapter(request).get_provider(request, key)
            return provider.redirect(request, AuthProcess.LOGIN, scope=SCOPES.get(key, SCOPES[OPENID_CONNECT]))
        except Exception as exc:  # noqa: BLE001  (unreachable discovery document, bad issuer: refuse, never a 500)
            from allauth.core.exceptions import ImmediateHttpResponse

            if isinstance(exc, ImmediateHttpResponse):
                return exc.response
            logger.warning("OIDC login could not start: %s", type(exc).__name__)
            return sso_failed(request, org=connection.org, connection=connection, reason="discovery_failed",
                              detail=type(exc).__name__, status=502)


def identity_from_claims(provider: str, data: dict[str, Any], group_claim: str = "") -> tuple[SsoIdentity | None, str]:
    """Return ``(identity, "")`` or ``(None, reason)`` from what allauth validated.

    ``data`` is allauth's ``SocialAccount.extra_data``: for ``openid_connect`` ``{"userinfo", "id_token"}``
    (merged, ID token first), for ``google`` the ID token's claims, for ``microsoft`` the Graph ``/me``
    profile. An email the IdP marks unverified (``email_verified: false``) is refused: whoever controls it is
    unknown. Groups are read only from the claim the connection names (``group_attribute``).
    """
    if provider == "microsoft":
        claims = dict(data)
        email = claims.get("mail") or claims.get("userPrincipalName") or ""
        first, last = claims.get("givenName") or "", claims.get("surname") or ""
        subject = str(claims.get("id") or "")
    else:
        if provider == OPENID_CONNECT or "id_token" in data or "userinfo" in data:
            claims = {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}
            claims.setdefault("amr", (data.get("id_token") or {}).get("amr"))
        else:
            claims = dict(data)
        email = claims.get("email") or ""
        first, last = claims.get("given_name") or "", claims.get("family_name") or ""
        subject = str(claims.get("sub") or "")
    if not isinstance(email, str) or not email.strip():
        return None, "no_email"
    verified = claims.get("email_verified")
    if verified is not None and verified not in (True, "true", "True"):
        return None, "email_unverified"
    groups = claims.get(group_claim) or () if group_claim else ()
    groups = tuple(str(g) for g in groups) if isinstance(groups, (list, tuple)) else ()
    amr = claims.get("amr") or ()
    idp_mfa = isinstance(amr, (list, tuple)) and any(str(v).lower() in MFA_AMR for v in amr)
    return SsoIdentity(email=email.strip(), subject=subject, first_name=str(first), last_name=str(last),
                       groups=groups, idp_mfa=idp_mfa), ""
