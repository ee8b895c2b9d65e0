"""How key secrets are stored. The hasher is a setting (``TWIG_AUTH["API_KEY_HASHER"]``).

* :class:`BcryptKeyHasher` (default, as the product promises): bcrypt, cost 12. Slow by design; the
  verification cache, single-flight and per-key-id failure budget keep it off the hot path.
* :class:`HmacSha256KeyHasher`: HMAC-SHA256 under a server-side pepper (``API_KEY_PEPPERS``, first one
  signs, all verify). Keys carry ~190 random bits, so a fast keyed hash is what NIST SP 800-63B asks for
  (≥ 112-bit secrets "SHALL be hashed with an approved one-way function"); the pepper lives outside the
  database, so a leaked table alone cannot be checked offline.
"""

from __future__ import annotations

import hashlib
import hmac

import bcrypt
from django.conf import settings
from django.utils.functional import cached_property


class BaseKeyHasher:
    """Override :attr:`algorithm`, :meth:`hash` and :meth:`verify`."""

    algorithm = ""

    def hash(self, secret: str) -> str:
        """Return the stored form of ``secret``, starting with ``<algorithm>$``."""
        raise NotImplementedError

    def verify(self, secret: str, encoded: str) -> bool:
        """Return whether ``secret`` matches ``encoded``, in constant time."""
        raise NotImplementedError

    def handles(self, encoded: str) -> bool:
        return encoded.startswith(self.algorithm + "$")


class BcryptKeyHasher(BaseKeyHasher):
    algorithm = "bcrypt"

    @property
    def rounds(self) -> int:
        from twig_auth.conf import app_settings

        return app_settings.API_KEY_BCRYPT_ROUNDS

    def hash(self, secret: str) -> str:
        return "bcrypt$" + bcrypt.hashpw(secret.encode("ascii"), bcrypt.gensalt(self.rounds)).decode("ascii")

    def verify(self, secret: str, encoded: str) -> bool:
        if not self.handles(encoded):
            return False
        try:
            return bcrypt.checkpw(secret.encode("ascii"), encoded[len("bcrypt$"):].encode("ascii"))
        except ValueError:  # a damaged stored hash ("Invalid salt") is a mismatch, not a server error
            return False


class HmacSha256KeyHasher(BaseKeyHasher):
    algorithm = "hmac_sha256"

    @cached_property
    def peppers(self) -> dict[str, bytes]:
        from twig_auth.conf import app_settings

        configured = app_settings.API_KEY_PEPPERS or [settings.SECRET_KEY]
        return {hashlib.sha256(p.encode()).hexdigest()[:8]: p.encode() for p in configured}

    def hash(self, secret: str) -> str:
        kid, pepper = next(iter(self.peppers.items()))
        return f"hmac_sha256${kid}${hmac.new(pepper, secret.encode('ascii'), hashlib.sha256).hexdigest()}"

    def verify(self, secret: str, encoded: str) -> bool:
        try:
            algorithm, kid, digest = encoded.split("$", 2)
        except ValueError:
            return False
        pepper = self.peppers.get(kid)
        if algorithm != self.algorithm or pepper is None:
            return False
        return hmac.compare_digest(hmac.new(pepper, secret.encode("ascii"), hashlib.sha256).hexdigest(), digest)


_HASHERS: dict[str, BaseKeyHasher] = {}


def get_hasher() -> BaseKeyHasher:
    """Return the configured hasher (loaded once; reset when settings change)."""
    from django.utils.module_loading import import_string

    from twig_auth.conf import app_settings

    path = app_settings.API_KEY_HASHER
    if path not in _HASHERS:
        _HASHERS[path] = import_string(path)()
    return _HASHERS[path]


def verify_any(secret: str, encoded: str) -> bool:
    """Verify with whichever known hasher produced ``encoded`` (keys outlive a change of hasher)."""
    for hasher in (get_hasher(), BcryptKeyHasher(), HmacSha256KeyHasher()):
        if hasher.handles(encoded):
            return hasher.verify(secret, encoded)
    return False


def reset() -> None:
    _HASHERS.clear()
