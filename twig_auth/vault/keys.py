"""The key ring from ``TWIG_AUTH["VAULT_KEYS"]``: the first key encrypts, every key decrypts. Built once per
process and dropped when the setting changes."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured

from twig_auth.vault.ciphers import VaultKey, parse_key


@dataclass(frozen=True)
class KeyRing:
    current: VaultKey
    ciphers: dict[int, AESGCM]

    @property
    def versions(self) -> list[int]:
        return list(self.ciphers)


def validate_keys(value: object) -> str | None:
    """Return what is wrong with a ``VAULT_KEYS`` value, or None. An empty list is valid here (check E009)."""
    if not isinstance(value, list | tuple):
        return f"must be a list of \"<version>:<base64 key>\" strings, got {type(value).__name__}"
    seen: set[int] = set()
    for index, line in enumerate(value):
        try:
            key = parse_key(line)
        except ValueError as exc:
            return f"entry {index}: {exc}"
        if key.version in seen:
            return f"entry {index}: key version {key.version} appears twice"
        seen.add(key.version)
    return None


_ring: KeyRing | None = None


def keyring() -> KeyRing:
    """Return the configured key ring; raise ImproperlyConfigured when there is no usable key."""
    global _ring
    if _ring is None:
        from twig_auth.conf import app_settings

        lines = app_settings.VAULT_KEYS
        problem = validate_keys(lines)
        if problem or not lines:
            raise ImproperlyConfigured(
                f'TWIG_AUTH["VAULT_KEYS"] {problem or "is empty"}: secrets held for users cannot be encrypted. '
                "Generate a key with `python manage.py twig_vault_keygen`.")
        keys = [parse_key(line) for line in lines]
        _ring = KeyRing(current=keys[0], ciphers={k.version: AESGCM(k.secret) for k in keys})
    return _ring


def reset() -> None:
    global _ring
    _ring = None
