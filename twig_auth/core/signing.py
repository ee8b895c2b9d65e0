"""HS256 JWTs with rotating keys: the first key signs, every key verifies, each named by its ``kid``.

Shared by the ``twig_session`` cookie and API access tokens. Only HS256 is ever accepted (``alg: none``
and RS/HS confusion fail), an unknown ``kid`` fails, the ``typ`` claim must name the kind of token, and
time claims are checked against the clock seam with no leeway, not PyJWT's wall clock, so tests can move
time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt

from twig_auth.core import clock

ALGORITHM = "HS256"
MAX_LENGTH = 4096  # far above any token we issue; longer input is refused before any parsing
_OPTIONS: Any = {"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False,
                 "verify_iss": False}


class TokenError(Exception):
    """The token is malformed, tampered with, signed by an unknown key, or of the wrong kind."""


class TokenExpired(TokenError):
    pass


def kid_of(secret: str) -> str:
    """Return the public name of a key: the first 8 hex digits of the SHA-256 of its secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    secret: str


class Keyring:
    """Signing keys, newest first."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.keys = tuple(SigningKey(kid_of(s), s) for s in secrets)
        self.by_kid = {k.kid: k for k in self.keys}

    def encode(self, claims: dict[str, Any]) -> str:
        key = self.keys[0]
        return jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})

    def decode(self, token: str, *, typ: str, required: Sequence[str] = ("exp", "iat")) -> dict[str, Any]:
        """Return the verified claims or raise :class:`TokenError` / :class:`TokenExpired`."""
        if not isinstance(token, str) or not token or len(token) > MAX_LENGTH:
            raise TokenError("malformed token")
        options = _options(tuple(required))
        newest = self.keys[0]
        try:
            # Usually one verification: one key, or a token signed by the newest. On a bad signature the
            # header's kid picks another configured key, if it names one.
            try:
                complete = jwt.decode_complete(token, newest.secret, algorithms=[ALGORITHM], options=options)
                used = newest
            except jwt.InvalidSignatureError:
                kid = jwt.get_unverified_header(token).get("kid")
                other = self.by_kid.get(kid) if isinstance(kid, str) else None
                if other is None or other is newest:
                    raise
                complete = jwt.decode_complete(token, other.secret, algorithms=[ALGORITHM], options=options)
                used = other
        except jwt.PyJWTError as exc:
            raise TokenError("invalid token") from exc
        header, claims = complete["header"], complete["payload"]
        if header.get("alg") != ALGORITHM or header.get("kid") != used.kid or claims.get("typ") != typ:
            raise TokenError("wrong key or kind of token")
        exp, iat = claims.get("exp"), claims.get("iat")
        if type(exp) is not int or type(iat) is not int:
            raise TokenError("invalid time claims")
        if exp <= clock.now().timestamp():
            raise TokenExpired("token expired")
        return claims


@lru_cache(maxsize=16)
def _options(required: tuple[str, ...]) -> dict[str, Any]:
    return {**_OPTIONS, "require": list(required)}


@lru_cache(maxsize=16)
def keyring(secrets: tuple[str, ...]) -> Keyring:
    """Return the (cached) keyring of these secrets."""
    return Keyring(secrets)
