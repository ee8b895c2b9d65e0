"""Start a connection: the authorization-code flow with PKCE (S256) and a state bound to the session.

:func:`begin` stores, in the user's session, one pending flow per state: the PKCE verifier, the provider, the
subject, the org and user who started it, the redirect URI and where to return. The callback
(:mod:`twig_auth.connectors.views`) takes the flow out of the session with the state the provider sent back
(single use: a replayed or forged state finds nothing), checks it is the same user and not older than
:data:`FLOW_SECONDS`, and only then trades the code. The state is the OAuth CSRF defence (RFC 6749 §10.12);
PKCE binds the code to this server (RFC 7636).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from twig_auth.connectors.providers import Provider
from twig_auth.core import clock
from twig_auth.core.crypto import digest
from twig_auth.exceptions import ConnectorUnavailable

SESSION_KEY = "twig_connector_flows"
FLOW_SECONDS = 600
MAX_FLOWS = 5
RETURN_MAX = 500


@dataclass(frozen=True)
class PendingFlow:
    provider: str
    subject: str
    org_id: Any
    user_id: str
    verifier: str
    redirect_uri: str
    return_to: str
    started: float

    def expired(self) -> bool:
        return clock.now().timestamp() - self.started > FLOW_SECONDS


def pkce_pair() -> tuple[str, str]:
    """Return ``(verifier, S256 challenge)``: 64 random bytes base64url (86 characters), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


def safe_return_path(value: Any, default: str = "/") -> str:
    """``value`` when it is a local path of this site (``/…``, not ``//host`` nor a scheme), else ``default``."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > RETURN_MAX:
        return default
    if value.startswith(("//", "/\\")) or any(c in value for c in "\r\n\t\\") or urlsplit(value).netloc:
        return default
    return value if url_has_allowed_host_and_scheme(value, allowed_hosts=None) else default


def redirect_uri(request: HttpRequest) -> str:
    """The callback URL registered at the providers: ``CONNECTOR_REDIRECT_URI``, else ``SSO_BASE_URL`` + the
    callback path, else this request's origin + the callback path."""
    from twig_auth.conf import app_settings

    if app_settings.CONNECTOR_REDIRECT_URI:
        return str(app_settings.CONNECTOR_REDIRECT_URI)
    path = reverse("twig_auth:connector_callback")
    if app_settings.SSO_BASE_URL:
        return str(app_settings.SSO_BASE_URL).rstrip("/") + path
    return request.build_absolute_uri(path)


def begin(request: HttpRequest, *, org: Any, provider: Provider, subject: str, return_to: str = "/") -> str:
    """Remember a new flow in the session and return the provider's authorization URL to send the browser to."""
    if not provider.configured:
        raise ConnectorUnavailable(f"{provider.name} is not configured on this server (CONNECTOR_PROVIDERS needs "
                                   "its client id).")
    state = secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    callback = redirect_uri(request)
    now = clock.now().timestamp()
    flows = {k: v for k, v in (request.session.get(SESSION_KEY) or {}).items()
             if isinstance(v, dict) and now - float(v.get("started", 0)) <= FLOW_SECONDS}
    for old in sorted(flows, key=lambda k: flows[k]["started"])[: max(0, len(flows) - MAX_FLOWS + 1)]:
        del flows[old]  # at most MAX_FLOWS pending at once (a few tabs), oldest dropped first
    flows[digest(state)] = {"provider": provider.slug, "subject": subject, "org": org.pk,
                            "user": str(request.user.pk), "verifier": verifier, "redirect_uri": callback,
                            "return_to": safe_return_path(return_to), "started": now}
    request.session[SESSION_KEY] = flows
    request.session.modified = True
    params = {"response_type": "code", "client_id": provider.client_id, "redirect_uri": callback,
              "scope": provider.scope, "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
              **dict(provider.authorize_params)}
    if not provider.scope:
        del params["scope"]
    separator = "&" if urlsplit(provider.authorization_endpoint).query else "?"
    return provider.authorization_endpoint + separator + urlencode(params)


def take(request: HttpRequest, state: Any) -> PendingFlow | None:
    """Remove and return the pending flow of ``state`` from the session (None when there is none)."""
    if not isinstance(state, str) or not state or len(state) > 200:
        return None
    flows = request.session.get(SESSION_KEY) or {}
    entry = flows.pop(digest(state), None) if isinstance(flows, dict) else None
    if entry is None:
        return None
    request.session[SESSION_KEY] = flows
    request.session.modified = True
    try:
        return PendingFlow(provider=str(entry["provider"]), subject=str(entry["subject"]), org_id=entry["org"],
                           user_id=str(entry["user"]), verifier=str(entry["verifier"]),
                           redirect_uri=str(entry["redirect_uri"]), return_to=safe_return_path(entry["return_to"]),
                           started=float(entry["started"]))
    except (KeyError, TypeError, ValueError):
        return None
