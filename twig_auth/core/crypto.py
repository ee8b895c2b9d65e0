"""Random identifiers and digests."""

from __future__ import annotations

import hashlib
import secrets
import string

BASE62 = string.digits + string.ascii_letters


def random_base62(length: int) -> str:
    """Return ``length`` cryptographically random base62 characters."""
    return "".join(secrets.choice(BASE62) for _ in range(length))


def opaque_id(prefix: str, length: int = 16) -> str:
    """Return an opaque public identifier such as ``agt_4f9K…`` for use in URLs."""
    return f"{prefix}_{random_base62(length)}"


def digest(value: str) -> str:
    """Return a SHA-256 hex digest, used to key counters without storing the raw value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def keyed_digest(value: str) -> str:
    """Return an HMAC-SHA256 hex digest under ``SECRET_KEY``: keys counters by an email or an IP without
    storing it, and, unlike :func:`digest`, without letting anyone who reads Redis test guesses offline."""
    from django.utils.crypto import salted_hmac

    return salted_hmac("twig_auth.counters", value, algorithm="sha256").hexdigest()
