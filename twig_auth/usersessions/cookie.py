"""The ``twig_session`` cookie value: an HS256 JWT ``{"sid", "iat", "exp", "typ": "session"}``."""

from __future__ import annotations

from django.conf import settings

from twig_auth.core import clock, signing

TOKEN_TYPE = "session"


def keyring() -> signing.Keyring:
    from twig_auth.conf import app_settings

    return signing.keyring(tuple(app_settings.SESSION_SIGNING_KEYS) or (settings.SECRET_KEY,))


def issue(session_key: str, timeout: int) -> tuple[str, int]:
    """Return a signed cookie value naming ``session_key`` and its expiry (Unix time)."""
    now = int(clock.now().timestamp())
    exp = now + timeout
    return keyring().encode({"sid": session_key, "iat": now, "exp": exp, "typ": TOKEN_TYPE}), exp


def read(raw: str | None) -> tuple[str | None, float]:
    """Return ``(session key, expiry)`` of a valid cookie value, else ``(None, 0)``."""
    if not raw:
        return None, 0
    try:
        claims = keyring().decode(raw, typ=TOKEN_TYPE, required=("exp", "iat", "sid"))
    except signing.TokenError:
        return None, 0
    if not isinstance(claims.get("sid"), str):
        return None, 0
    return claims["sid"], float(claims["exp"])


def looks_signed(value: str | None) -> bool:
    return bool(value) and value.count(".") == 2  # type: ignore[union-attr]
