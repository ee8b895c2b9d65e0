"""AES-256-GCM tokens that name the key that sealed them. Pure functions: no settings, no ORM.

A token reads ``tv1.<key version>.<base64url(nonce ‖ ciphertext ‖ tag)>``. The associated data the caller gives
(which row, which org) is authenticated but not stored: opening a token with other associated data fails, so a
ciphertext copied to another row or org is refused. The format prefix and key version are authenticated too,
so a token relabelled with another version fails instead of being tried under the wrong key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twig_auth.exceptions import DecryptionFailed

PREFIX = "tv1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit random nonces: safe for far more than 2**32 seals per key
MAX_VERSION = 2**31 - 1
_TOKEN = re.compile(r"^tv1\.([1-9][0-9]{0,9})\.([A-Za-z0-9_-]+)$")
_KEY_LINE = re.compile(r"^\s*([1-9][0-9]{0,9})\s*:\s*(\S+)\s*$")


@dataclass(frozen=True)
class VaultKey:
    """One AES-256 key and the version number tokens sealed under it carry."""

    version: int
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.version <= MAX_VERSION:
            raise ValueError(f"key version must be between 1 and {MAX_VERSION}, got {self.version}")
        if len(self.secret) != KEY_BYTES:
            raise ValueError(f"key {self.version} must be {KEY_BYTES} bytes (AES-256), got {len(self.secret)}")


def parse_key(text: str) -> VaultKey:
    """Return the key written as ``"<version>:<base64 of 32 bytes>"``; raise ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"a key must be a string \"<version>:<base64 key>\", got {type(text).__name__}")
    match = _KEY_LINE.match(text)
    if not match:
        raise ValueError("a key must read \"<version>:<base64 key>\", e.g. \"2:…\" (python manage.py "
                         "twig_vault_keygen prints one)")
    version, encoded = int(match.group(1)), match.group(2)
    try:
        secret = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_" if "-" in encoded
                                  or "_" in encoded else None, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key {version} is not valid base64") from None
    return VaultKey(version, secret)


def format_key(key: VaultKey) -> str:
    """Return ``key`` as the settings line :func:`parse_key` reads."""
    return f"{key.version}:{base64.b64encode(key.secret).decode()}"


def new_key(version: int) -> VaultKey:
    return VaultKey(version, AESGCM.generate_key(bit_length=256))


def _header(version: int) -> bytes:
    return f"{PREFIX}.{version}.".encode()


def seal(plaintext: bytes, *, aad: bytes, key: VaultKey, cipher: AESGCM | None = None) -> str:
    """Encrypt ``plaintext`` under ``key`` with ``aad`` authenticated; return the token."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = (cipher or AESGCM(key.secret)).encrypt(nonce, plaintext, _header(key.version) + aad)
    return f"{PREFIX}.{key.version}." + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def is_token(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX + ".")


def token_version(token: str) -> int | None:
    """Return the key version ``token`` names, or None when it is not a token."""
    match = _TOKEN.match(token) if isinstance(token, str) else None
    return int(match.group(1)) if match else None


def unseal(token: str, *, aad: bytes, keys: Mapping[int, AESGCM]) -> bytes:
    """Return the plaintext of ``token`` under the key of its version and ``aad``.

    Raise :class:`DecryptionFailed` when the token is malformed, names a key that is not configured, was sealed
    with other associated data (another row or org) or was altered. The message never contains the token.
    """
    match = _TOKEN.match(token) if isinstance(token, str) else None
    if not match:
        raise DecryptionFailed("The stored value is not a vault token.")
    version = int(match.group(1))
    cipher = keys.get(version)
    if cipher is None:
        raise DecryptionFailed(f"The stored value was encrypted with key version {version}, which is not in "
                               "VAULT_KEYS.", key_version=version)
    encoded = match.group(2)
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionFailed("The stored value is not a vault token.") from None
    if len(raw) < NONCE_BYTES + 16:
        raise DecryptionFailed("The stored value is not a vault token.")
    try:
        return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _header(version) + aad)
    except InvalidTag:
        raise DecryptionFailed("The stored value does not belong to this record, or it was altered.",
                               key_version=version) from None
