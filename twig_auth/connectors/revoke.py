"""RFC 7009 token revocation, authenticated as the client."""

from __future__ import annotations

from twig_auth.connectors.http import HttpFailure, client_auth, send
from twig_auth.connectors.providers import Provider

HINTS = ("refresh_token", "access_token")


def revoke_token(provider: Provider, token: str, hint: str) -> str:
    """Ask ``provider`` to revoke ``token`` (``hint`` is ``refresh_token`` or ``access_token``).

    Return ``"revoked"`` (HTTP 200: RFC 7009 §2.2 answers 200 for unknown tokens too), ``"not_supported"`` (the
    provider has no revocation endpoint) or ``"failed"`` (unreachable, refused, 5xx). Never raises for the
    provider's sake: disconnecting goes on locally whatever the provider says.
    """
    if hint not in HINTS:
        raise ValueError(f"hint must be one of {HINTS}")
    if not token:
        return "revoked"
    if not provider.revocation_endpoint:
        return "not_supported"
    data, headers = client_auth(provider, {"token": token, "token_type_hint": hint})
    try:
        answer = send(provider.revocation_endpoint, data=data, headers=headers)
    except HttpFailure:
        return "failed"
    if answer.status != 200:
        return "failed"
    body = answer.json()
    if body is not None and body.get("ok") is False:  # Slack's auth.revoke says 200 {"ok": false}
        return "failed"
    return "revoked"
