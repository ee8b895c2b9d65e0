"""HS256 JWTs with rotating keys: the first key signs, every key verifies, each named by its ``kid``.

Only HS256 is ever accepted (``alg: none`` and RS/HS confusion fail), ``exp`` is checked against the
clock seam, and an unknown ``kid`` fails before any signature work. Time claims are checked against the clock
seam, not PyJWT's wall clock, so tests can move time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import jwt

from twig_auth.core import clock

ALGORITHM = "HS256"


class TokenError(Exception):
    """The token is malformed, tampered with, signed by an unknown key, or of the wrong kind."""


class TokenExpired(TokenError):
    pass


def kid_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]


def encode(claims: dict[str, Any], keys: Sequence[str]) -> str:
    """Sign ``claims`` with the first of ``keys``."""
    secret = keys[0]
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid_of(secret)})


def decode(token: str, keys: Sequence[str], *, required: Sequence[str] = ("exp", "iat")) -> dict[str, Any]:
    """Return the verified claims of ``token`` or raise :class:`TokenError` / :class:`TokenExpired`."""
    if not isinstance(token, str) or len(token) > 4096:
        raise TokenError("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise TokenError("unsupported algorithm")
    by_kid = {kid_of(k): k for k in keys}
    secret = by_kid.get(str(header.get("kid")))
    if secret is None:
        raise TokenError("unknown signing key")
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                     "require": list(required)})
    except jwt.PyJWTError as exc:
        raise TokenError("invalid token") from exc
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise TokenError("invalid expiry")
    if exp <= clock.now().timestamp():
        raise TokenExpired("token expired")
    return claims
