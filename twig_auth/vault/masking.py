"""Masks that show which secret is stored without revealing it."""

from __future__ import annotations

import re

MASK = "••••"
_PREFIX = re.compile(r"^[A-Za-z]{2,6}-")
MIN_REVEAL_LENGTH = 12


def mask_secret(secret: str) -> str:
    """Return ``sk-…abcd``: a short vendor prefix and the last four characters, nothing in between.

    Secrets shorter than 12 characters show no characters at all: four of eight would be half the key.
    """
    secret = (secret or "").strip()
    if len(secret) < MIN_REVEAL_LENGTH:
        return MASK
    match = _PREFIX.match(secret)
    return f"{match.group(0) if match else ''}…{secret[-4:]}"
