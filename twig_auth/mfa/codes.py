"""Pure code helpers: TOTP matching with a replay floor, SMS and recovery codes, their keyed digests.

No ORM here. TOTP follows RFC 6238 with HMAC-SHA1, 6 digits and 30 s steps, what authenticator apps
expect; :func:`totp_match` returns the time step a code matched so the caller can consume it atomically.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django_otp.oath import hotp

RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: easy to read back from paper
RECOVERY_LENGTH = 10
SMS_DIGITS = 6


@dataclass(frozen=True)
class TotpParams:
    step: int = 30
    t0: int = 0
    digits: int = 6
    drift: int = 0


def normalize(code: str) -> str:
    """Return ``code`` without spaces and hyphens, lowercased (people type codes as they see them)."""
    return "".join(ch for ch in str(code) if ch not in " -\t").lower()


def totp_code(key: bytes, at: float, params: TotpParams = TotpParams()) -> str:
    """Return the code for time ``at`` (Unix seconds), zero-padded."""
    t = (int(at) - params.t0) // params.step + params.drift
    return str(hotp(key, t, digits=params.digits)).zfill(params.digits)


def totp_match(key: bytes, code: str, *, at: float, params: TotpParams, tolerance: int, last_t: int) -> int | None:
    """Return the time step ``code`` belongs to, within ``tolerance`` steps of ``at`` and above ``last_t``.

    A code at or below ``last_t`` (already used, or older than one that was) never matches: that is
    the replay floor. Comparison is constant time per candidate.
    """
    code = normalize(code)
    if len(code) != params.digits or not code.isascii() or not code.isdigit():  # "١٢٣٤٥٦" is isdigit()
        return None
    now_t = (int(at) - params.t0) // params.step + params.drift
    for t in range(now_t - tolerance, now_t + tolerance + 1):
        if t <= last_t:
            continue
        if hmac.compare_digest(str(hotp(key, t, digits=params.digits)).zfill(params.digits), code):
            return t
    return None


def new_sms_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(SMS_DIGITS))


def new_recovery_codes(count: int) -> list[str]:
    """Return ``count`` distinct codes such as ``k7pm3-xq9wd`` (about 49 bits each)."""
    codes: set[str] = set()
    while len(codes) < count:
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.add(f"{raw[:5]}-{raw[5:]}")
    return sorted(codes)


def looks_like_recovery_code(code: str) -> bool:
    raw = normalize(code)
    return len(raw) == RECOVERY_LENGTH and all(ch in RECOVERY_ALPHABET for ch in raw)


def _key(purpose: str) -> bytes:
    from django.conf import settings

    return hmac.new(str(settings.SECRET_KEY).encode(), f"twig_auth.mfa.{purpose}".encode(), hashlib.sha256).digest()


def code_digest(code: str, purpose: str) -> str:
    """Keyed SHA-256 of a normalized code: what is stored instead of the code itself."""
    return hmac.new(_key(purpose), normalize(code).encode(), hashlib.sha256).hexdigest()


def recovery_digest(code: str) -> str:
    """The 16-hex-digit (64-bit) keyed digest stored in django-otp's ``StaticToken.token`` (16 characters)."""
    return code_digest(code, "recovery")[:16]
