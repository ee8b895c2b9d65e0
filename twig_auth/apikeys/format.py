"""The API key format. Pure functions: no I/O, no settings.

A key is ``twigsk_<env>_`` + a 12-character public key id + 32 random base62 characters + a 6-character
base62 CRC32 of everything before it (GitHub's token scheme). The checksum lets a mistyped or truncated
key be refused before any cache or database access; the public id is what the database indexes.

    twigsk_live_4fK9qLm2Xa7B nD8sV1pQ0wErTyU6iOaS3dFgH5jKlZxC 2bE9fQ
    └ prefix ──┘└ key id ──┘└ secret (32) ──────────────────┘└ crc ┘   (shown with spaces for reading)
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass

from twig_auth.core.crypto import BASE62

PREFIX = "twigsk_"
ENVIRONMENTS = ("live", "test")
KEY_ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
BODY_LENGTH = KEY_ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH
KEY_LENGTH = len(PREFIX) + 5 + BODY_LENGTH  # "live_" / "test_"
_BASE62_SET = frozenset(BASE62)
_KEY_RE = re.compile(rf"twigsk_(live|test)_([0-9A-Za-z]{{{KEY_ID_LENGTH}}})([0-9A-Za-z]{{{SECRET_LENGTH}}})"
                     rf"([0-9A-Za-z]{{{CHECKSUM_LENGTH}}})")


class KeyFormatError(ValueError):
    """The string is not a well-formed twig API key; the message says what looks wrong."""


@dataclass(frozen=True)
class ParsedKey:
    environment: str
    key_id: str
    secret: str
    full: str

    @property
    def prefix(self) -> str:
        """The part that may be shown: ``twigsk_live_`` plus the public key id."""
        return f"{PREFIX}{self.environment}_{self.key_id}"


def _random(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def checksum(text: str) -> str:
    """Return the CRC32 of ``text`` as 6 base62 characters (zero-padded)."""
    value = zlib.crc32(text.encode("ascii"))
    out = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        out.append(BASE62[digit])
    return "".join(reversed(out))


def generate(environment: str, key_id: str | None = None) -> ParsedKey:
    """Return a new random key for ``environment`` (``live`` or ``test``)."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {ENVIRONMENTS}")
    key_id = key_id or _random(KEY_ID_LENGTH)
    secret = _random(SECRET_LENGTH)
    head = f"{PREFIX}{environment}_{key_id}{secret}"
    return ParsedKey(environment, key_id, secret, head + checksum(head))


def parse(raw: str) -> ParsedKey:
    """Return the parts of ``raw`` or raise :class:`KeyFormatError` with a hint at the usual mistake."""
    match = _KEY_RE.fullmatch(raw) if isinstance(raw, str) else None
    if match is not None:
        if checksum(raw[:-CHECKSUM_LENGTH]) != match.group(4):
            raise KeyFormatError("The API key's checksum does not match; it was probably mistyped or cut.")
        return ParsedKey(match.group(1), match.group(2), match.group(3), raw)
    _explain(raw)
    raise KeyFormatError("The API key is malformed.")  # pragma: no cover  (_explain always raises)


def _explain(raw: object) -> None:
    """Raise the most helpful :class:`KeyFormatError` for a string that failed the fast match."""
    if not isinstance(raw, str) or not raw:
        raise KeyFormatError("The API key is empty.")
    if raw.lower().startswith("bearer"):
        raise KeyFormatError('The key is preceded by "Bearer" twice; send "Authorization: Bearer <key>".')
    if raw != raw.strip():
        raise KeyFormatError("The API key has spaces or line breaks around it; send it exactly as shown.")
    if any(c.isspace() for c in raw):
        raise KeyFormatError("The API key contains whitespace; send it exactly as shown.")
    if not raw.startswith(PREFIX):
        raise KeyFormatError("API keys start with twigsk_live_ or twigsk_test_.")
    environment, sep, body = raw[len(PREFIX):].partition("_")
    if not sep or environment not in ENVIRONMENTS:
        raise KeyFormatError("API keys start with twigsk_live_ or twigsk_test_.")
    if len(body) != BODY_LENGTH:
        raise KeyFormatError(f"The API key has the wrong length ({len(raw)} characters, expected {KEY_LENGTH}); "
                             "it may be truncated or have extra characters.")
    if not _BASE62_SET.issuperset(body):
        raise KeyFormatError("The API key contains characters that never appear in keys.")


def looks_like_key(raw: str) -> bool:
    """Return True for strings that try to be a twig key (used to choose the error message)."""
    return raw.startswith(PREFIX) or "twigsk" in raw[:40].lower()
