"""The OAuth 2.0 providers connectors may use, from ``TWIG_AUTH["CONNECTOR_PROVIDERS"]``.

Each entry of the setting is merged over the built-in defaults of the same slug (``google_drive`` and
``slack`` ship with their vendors' endpoints and no client id), so a deployment sets only what differs,
typically ``client_id`` and ``client_secret``. Any slug may be added for another OAuth 2.0 server. A provider
without a client id is "not configured": nothing can connect through it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

AUTH_METHODS = ("client_secret_basic", "client_secret_post")
URL_KEYS = ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "api_probe_url")
KEYS = frozenset({"name", *URL_KEYS, "client_id", "client_secret", "scopes", "token_endpoint_auth_method",
                  "authorize_params", "scope_separator"})
SLUG_MAX = 40

DEFAULT_PROVIDERS: dict[str, dict[str, Any]] = {
    "google_drive": {
        "name": "Google Drive",
        "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_endpoint": "https://oauth2.googleapis.com/token",
        "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
        "client_id": "",
        "client_secret": "",
        "scopes": ["https://www.googleapis.com/auth/drive.readonly"],
        "token_endpoint_auth_method": "client_secret_post",
        # offline + consent: Google returns a refresh token on every (re)connection
        "authorize_params": {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
        "api_probe_url": "https://www.googleapis.com/drive/v3/about?fields=user",
    },
    "slack": {
        "name": "Slack",
        "authorization_endpoint": "https://slack.com/oauth/v2/authorize",
        "token_endpoint": "https://slack.com/api/oauth.v2.access",
        "revocation_endpoint": "https://slack.com/api/auth.revoke",
        "client_id": "",
        "client_secret": "",
        "scopes": ["channels:read", "channels:history"],
        "scope_separator": ",",
        "token_endpoint_auth_method": "client_secret_post",
        "authorize_params": {},
        "api_probe_url": "https://slack.com/api/auth.test",
    },
}


@dataclass(frozen=True)
class Provider:
    """One configured OAuth 2.0 provider. ``client_secret`` never appears in its repr."""

    slug: str
    name: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scopes: tuple[str, ...] = ()
    token_endpoint_auth_method: str = "client_secret_basic"
    authorize_params: tuple[tuple[str, str], ...] = ()
    api_probe_url: str = ""
    scope_separator: str = " "

    @property
    def configured(self) -> bool:
        """Whether connections can start: a client id and both flow endpoints are set."""
        return bool(self.client_id and self.authorization_endpoint and self.token_endpoint)

    @property
    def scope(self) -> str:
        return self.scope_separator.join(self.scopes)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: Any) -> str | None:
    """Why ``url`` may not be a provider endpoint (https; plain http only on loopback), or None."""
    if not isinstance(url, str) or not url or len(url) > 2000:
        return "must be a URL"
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https" and bool(host)
    if not secure and not (parts.scheme == "http" and _is_loopback(host)):
        return f"must be an https:// URL (plain http only for localhost), got {url[:100]!r}"
    if parts.username or parts.password or parts.fragment:
        return f"must not carry credentials or a fragment, got {url[:100]!r}"
    return None


def _entry_problem(slug: Any, entry: Any) -> str | None:
    if not isinstance(slug, str) or not slug or len(slug) > SLUG_MAX or not slug.replace("_", "").isalnum():
        return f"has an invalid provider slug {slug!r} (letters, digits and _; at most {SLUG_MAX})"
    if not isinstance(entry, dict):
        return f"[{slug!r}] must be a dict"
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        return f"[{slug!r}] has unknown keys {unknown}"
    merged = {**DEFAULT_PROVIDERS.get(slug, {}), **entry}
    for key in ("name", "client_id", "client_secret", "scope_separator"):
        if key in merged and not isinstance(merged[key], str):
            return f"[{slug!r}][{key!r}] must be a string"
    for key in ("authorization_endpoint", "token_endpoint"):
        if key not in merged:
            return f"[{slug!r}] needs {key!r}"
    for key in URL_KEYS:
        if merged.get(key):
            problem = url_problem(merged[key])
            if problem:
                return f"[{slug!r}][{key!r}] {problem}"
    scopes = merged.get("scopes", [])
    if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) and s and " " not in s for s in scopes):
        return f"[{slug!r}]['scopes'] must be a list of scope strings"
    if merged.get("token_endpoint_auth_method", AUTH_METHODS[0]) not in AUTH_METHODS:
        return f"[{slug!r}]['token_endpoint_auth_method'] must be one of {', '.join(AUTH_METHODS)}"
    params = merged.get("authorize_params", {})
    if not isinstance(params, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
        return f"[{slug!r}]['authorize_params'] must be a dict of strings"
    reserved = {"client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "response_type",
                "scope"} & set(params)
    if reserved:
        return f"[{slug!r}]['authorize_params'] may not set {sorted(reserved)} (the flow sets them)"
    return None


def validate_providers(value: Any) -> str | None:
    """The validator of ``CONNECTOR_PROVIDERS``: a dict slug → provider dict (merged over the defaults)."""
    if not isinstance(value, dict):
        return f"must be a dict of provider slug -> settings, got {type(value).__name__}"
    for slug, entry in value.items():
        problem = _entry_problem(slug, entry)
        if problem:
            return problem
    return None


def _build(slug: str, entry: dict[str, Any]) -> Provider:
    return Provider(
        slug=slug, name=str(entry.get("name") or slug.replace("_", " ").title()),
        authorization_endpoint=entry.get("authorization_endpoint", ""), token_endpoint=entry.get("token_endpoint", ""),
        revocation_endpoint=entry.get("revocation_endpoint", ""), client_id=entry.get("client_id", ""),
        client_secret=entry.get("client_secret", ""), scopes=tuple(entry.get("scopes", ())),
        token_endpoint_auth_method=entry.get("token_endpoint_auth_method", AUTH_METHODS[0]),
        authorize_params=tuple(sorted((entry.get("authorize_params") or {}).items())),
        api_probe_url=entry.get("api_probe_url", ""), scope_separator=entry.get("scope_separator", " "))


def all_providers() -> dict[str, Provider]:
    """Every provider: the defaults, with each configured entry merged over the default of its slug."""
    from twig_auth.conf import app_settings

    configured = app_settings.CONNECTOR_PROVIDERS
    configured = configured if isinstance(configured, dict) else {}
    slugs = list(DEFAULT_PROVIDERS) + [s for s in configured if s not in DEFAULT_PROVIDERS]
    return {slug: _build(slug, {**DEFAULT_PROVIDERS.get(slug, {}), **(configured.get(slug) or {})})
            for slug in slugs}


def get_provider(slug: str) -> Provider | None:
    """The provider ``slug``, or None when there is no such provider."""
    return all_providers().get(slug)
