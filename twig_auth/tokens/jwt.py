"""HS256 access tokens: sign with the newest key, verify with any configured key, nothing but HS256.

Keys come from ``TWIG_AUTH["JWT_SIGNING_KEYS"]`` (newest first), by default one key derived from
``SECRET_KEY``. Each key is named in the token header by its ``kid``: the first 8 hex digits of the
SHA-256 of the secret, so a kid reveals nothing usable and rotating keys needs no bookkeeping.

Verification refuses, as :class:`~twig_auth.exceptions.InvalidToken`: any ``alg`` but HS256 (``none``,
``RS256`` with a public key used as an HMAC secret …), an unknown ``kid``, a bad signature, a payload that
is not an access token, and missing ``exp``/``iat``/``sub``. Expiry is checked against
:func:`twig_auth.core.clock.now` with no leeway and answers :class:`~twig_auth.exceptions.TokenExpired`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from twig_auth.conf import app_settings
from twig_auth.core import signing
from twig_auth.core.signing import SigningKey, kid_of
from twig_auth.exceptions import InvalidToken, TokenExpired

TOKEN_TYPE = "access"
__all__ = ["SigningKey", "decode", "encode", "kid_of", "reset", "signing_keys"]

_keyring: signing.Keyring | None = None


def _derived_default() -> str:
    from django.conf import settings

    return hmac.new(str(settings.SECRET_KEY).encode("utf-8"), b"twig_auth.tokens.jwt", hashlib.sha256).hexdigest()


def keyring() -> signing.Keyring:
    """Return the access-token keys; computed once, until ``TWIG_AUTH`` or ``SECRET_KEY`` changes."""
    global _keyring
    if _keyring is None:
        _keyring = signing.Keyring(tuple(app_settings.JWT_SIGNING_KEYS or ()) or (_derived_default(),))
    return _keyring


def signing_keys() -> tuple[tuple[SigningKey, ...], dict[str, SigningKey]]:
    """Return the keys (first signs) and a kid → key map."""
    ring = keyring()
    return ring.keys, ring.by_kid


def reset() -> None:
    """Forget the computed keys (settings changed)."""
    global _keyring
    _keyring = None


@receiver(setting_changed)
def _secret_key_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "SECRET_KEY":
        reset()


def encode(claims: dict[str, Any]) -> str:
    """Sign ``claims`` with the newest key; the header names it by ``kid``."""
    return keyring().encode(claims)


def decode(token: str) -> dict[str, Any]:
    """Return the verified claims of an access token, or raise ``InvalidToken`` / ``TokenExpired``."""
    try:
        return keyring().decode(token, typ=TOKEN_TYPE, required=("exp", "iat", "sub"))
    except signing.TokenExpired:
        raise TokenExpired("The access token has expired; refresh it.") from None
    except signing.TokenError:
        raise InvalidToken() from None
