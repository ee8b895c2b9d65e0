"""Token-endpoint grants (RFC 6749 §4.1.3 authorization code with PKCE, §6 refresh) and their answers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from twig_auth.connectors.http import HttpAnswer, HttpFailure, client_auth, send
from twig_auth.connectors.providers import Provider

# error codes meaning "this grant (code or refresh token) is dead": only a new connection helps.
# invalid_grant is RFC 6749's; the others are Slack's words for the same thing.
DEAD_GRANT = frozenset({"invalid_grant", "invalid_refresh_token", "token_revoked", "token_expired", "invalid_code",
                        "code_already_used", "account_inactive"})
CLIENT_REFUSED = frozenset({"invalid_client", "unauthorized_client", "bad_client_secret", "invalid_client_id"})
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class GrantError(Exception):
    """The token endpoint refused or failed. ``kind``: "dead_grant" (reconnect), "client" (our client
    credentials are refused: configuration), "unavailable" (network, 5xx, garbage). ``reason`` is ours."""

    def __init__(self, kind: str, reason: str, error: str = "") -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.error = error


@dataclass(frozen=True)
class TokenSet:
    """A token response. The tokens never appear in its repr."""

    access_token: str = field(repr=False)
    refresh_token: str = field(default="", repr=False)
    token_type: str = "Bearer"
    scope: str = ""
    expires_in: int | None = None


def safe_error_code(value: Any) -> str:
    """The provider's ``error`` code if it looks like one, else ``"unknown"`` (never free text)."""
    return value if isinstance(value, str) and _SAFE_CODE.fullmatch(value) else "unknown"


def parse_token_answer(answer: HttpAnswer) -> TokenSet:
    """Return the token set of a successful answer; raise :class:`GrantError` otherwise."""
    body = answer.json()
    error = body.get("error") if body else None
    if body is not None and body.get("ok") is False and not error:
        error = "unknown"  # Slack answers 200 {"ok": false, "error": …}
    if answer.status >= 500:
        raise GrantError("unavailable", f"the provider failed (HTTP {answer.status})")
    if error or answer.status != 200:
        code = safe_error_code(error)
        if code in DEAD_GRANT:
            return _raise("dead_grant", f"the provider refused the grant ({code})", code)
        if code in CLIENT_REFUSED:
            return _raise("client", f"the provider refused this server's client credentials ({code}); check "
                                    "CONNECTOR_PROVIDERS", code)
        return _raise("unavailable", f"the token endpoint answered HTTP {answer.status} ({code})", code)
    if body is None:
        raise GrantError("unavailable", "the token endpoint answered something other than JSON")
    access = body.get("access_token")
    if not isinstance(access, str) or not access or len(access) > 8000:
        raise GrantError("unavailable", "the token endpoint answered without an access token")
    refresh = body.get("refresh_token")
    expires_in = body.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 0 < expires_in < 10 * 365 * 86400:
        expires_in = None
    token_type = body.get("token_type")
    scope = body.get("scope")
    return TokenSet(access_token=access,
                    refresh_token=refresh if isinstance(refresh, str) and len(refresh) <= 8000 else "",
                    token_type=token_type[:40] if isinstance(token_type, str) and token_type else "Bearer",
                    scope=scope[:2000] if isinstance(scope, str) else "", expires_in=expires_in)


def _raise(kind: str, reason: str, code: str) -> TokenSet:
    raise GrantError(kind, reason, code)


def _token_request(provider: Provider, form: dict[str, str]) -> TokenSet:
    data, headers = client_auth(provider, form)
    try:
        answer = send(provider.token_endpoint, data=data, headers=headers)
    except HttpFailure as exc:
        raise GrantError("unavailable", exc.reason) from None
    return parse_token_answer(answer)


def exchange_code(provider: Provider, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
    """Trade an authorization code (and its PKCE verifier) for tokens."""
    return _token_request(provider, {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                                     "code_verifier": code_verifier})


def refresh(provider: Provider, *, refresh_token: str) -> TokenSet:
    """Trade a refresh token for a new access token (and, when the provider rotates, a new refresh token)."""
    return _token_request(provider, {"grant_type": "refresh_token", "refresh_token": refresh_token})
