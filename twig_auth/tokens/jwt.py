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
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from django.core.signals import setting_changed
from django.dispatch import receiver

from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.exceptions import InvalidToken, TokenExpired

ALGORITHM = "HS256"
TOKEN_TYPE = "access"
MAX_LENGTH = 4096  # far above any token we issue; longer input is refused before any parsing
_DECODE_OPTIONS: Any = {"require": ["exp", "iat", "sub"], "verify_exp": False, "verify_iat": False,
                        "verify_nbf": False, "verify_aud": False, "verify_iss": False}


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    secret: str


def kid_of(secret: str) -> str:
    """Return the public name of a key: the first 8 hex digits of the SHA-256 of its secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]


_keys: tuple[tuple[SigningKey, ...], dict[str, SigningKey]] | None = None


def _derived_default() -> str:
    from django.conf import settings

    return hmac.new(str(settings.SECRET_KEY).encode("utf-8"), b"twig_auth.tokens.jwt", hashlib.sha256).hexdigest()


def signing_keys() -> tuple[tuple[SigningKey, ...], dict[str, SigningKey]]:
    """Return the keys (first signs) and a kid → key map; computed once, until ``TWIG_AUTH`` or
    ``SECRET_KEY`` changes (:func:`reset`)."""
    global _keys
    if _keys is None:
        secrets_ = tuple(app_settings.JWT_SIGNING_KEYS or ()) or (_derived_default(),)
        keys = tuple(SigningKey(kid_of(s), s) for s in secrets_)
        _keys = (keys, {k.kid: k for k in keys})
    return _keys


def reset() -> None:
    """Forget the computed keys (settings changed)."""
    global _keys
    _keys = None


@receiver(setting_changed)
def _secret_key_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "SECRET_KEY":
        reset()


def encode(claims: dict[str, Any]) -> str:
    """Sign ``claims`` with the newest key; the header names it by ``kid``."""
    key = signing_keys()[0][0]
    return pyjwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})


def decode(token: str) -> dict[str, Any]:
    """Return the verified claims of an access token, or raise ``InvalidToken`` / ``TokenExpired``."""
    if not isinstance(token, str) or not token or len(token) > MAX_LENGTH:
        raise InvalidToken()
    keys, by_kid = signing_keys()
    try:
        # The common case is one key, or a token signed by the newest: a single verification. On a bad
        # signature the header's kid picks another configured key, if it names one.
        try:
            complete = pyjwt.decode_complete(token, keys[0].secret, algorithms=[ALGORITHM], options=_DECODE_OPTIONS,
                                             leeway=0)
            used = keys[0]
        except pyjwt.InvalidSignatureError:
            kid = pyjwt.get_unverified_header(token).get("kid")
            other = by_kid.get(kid) if isinstance(kid, str) else None
            if other is None or other is keys[0]:
                raise
            complete = pyjwt.decode_complete(token, other.secret, algorithms=[ALGORITHM], options=_DECODE_OPTIONS,
                                             leeway=0)
            used = other
    except pyjwt.PyJWTError:
        raise InvalidToken() from None
    header, claims = complete["header"], complete["payload"]
    if header.get("alg") != ALGORITHM or header.get("kid") != used.kid or claims.get("typ") != TOKEN_TYPE:
        raise InvalidToken()
    exp, iat = claims.get("exp"), claims.get("iat")
    if type(exp) is not int or type(iat) is not int:
        raise InvalidToken()
    if exp <= clock.now().timestamp():
        raise TokenExpired("The access token has expired; refresh it.")
    return claims
