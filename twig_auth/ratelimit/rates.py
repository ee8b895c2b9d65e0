"""Scope classes, their default limits, and the rate grammar ``"<count>/<n><unit>"`` (``"100/m"``, ``"5/10s"``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

SCOPES: tuple[str, ...] = ("execute", "write", "read", "admin")
DEFAULT_RATE_LIMITS: dict[str, str] = {"execute": "100/m", "write": "10/m", "read": "200/m", "admin": "50/m"}

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_GRAMMAR = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
MAX_LIMIT = 1_000_000
MAX_PERIOD = 86400 * 7


@dataclass(frozen=True)
class Rate:
    """A bucket of ``limit`` tokens that refills completely, and continuously, over ``period`` seconds."""

    limit: int
    period: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse ``"100/m"``; raise ``ValueError`` on bad grammar, a zero limit or a zero period."""
        match = _GRAMMAR.match(text) if isinstance(text, str) else None
        if not match:
            raise ValueError(f"must be a rate like '100/m' (count/[n]unit, unit s, m, h or d), got {text!r}")
        limit, multiplier, unit = int(match[1]), int(match[2] or 1), match[3]
        period = multiplier * _UNITS[unit]
        # A zero limit or period would mean an infinite refill time (a divide by zero in the bucket maths).
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        if not 1 <= period <= MAX_PERIOD:
            raise ValueError(f"period must be between 1 second and 7 days, got {period} s")
        return cls(limit, period)

    def __str__(self) -> str:
        return f"{self.limit}/{self.period}s"


def validate_rate_limits(value: Any) -> str | None:
    """Validator of the ``RATE_LIMITS`` setting: a dict of scope class → rate; missing scopes keep defaults."""
    if not isinstance(value, dict):
        return "must be a dict of scope class to rate, e.g. {'read': '200/m'}"
    unknown = sorted(set(value) - set(SCOPES))
    if unknown:
        return f"has unknown scope classes {unknown} (known: {', '.join(SCOPES)})"
    for scope, text in value.items():
        try:
            Rate.parse(text)
        except ValueError as exc:
            return f"{scope}: {exc}"
    return None


@lru_cache(maxsize=256)
def parse_rate(text: str) -> Rate:
    """:meth:`Rate.parse`, memoized: rates are parsed on every rate-limited request."""
    return Rate.parse(text)


def default_rate(scope: str) -> Rate:
    """Return the configured (``TWIG_AUTH["RATE_LIMITS"]``) or built-in rate of a scope class."""
    from twig_auth.conf import app_settings

    if scope not in SCOPES:
        raise ValueError(f"unknown scope class {scope!r} (known: {', '.join(SCOPES)})")
    configured = app_settings.RATE_LIMITS or {}
    return parse_rate(configured.get(scope) or DEFAULT_RATE_LIMITS[scope])


def limits_for(org_id: Any, scope: str) -> Rate:
    """Return the rate of ``scope`` for an organization: its ``rateLimits`` override (enterprise plans only,
    see :mod:`twig_auth.orgs.policy`) or the deployment default. Reads the per-process org settings cache,
    so no query on the warm path; a changed override applies within its 30 seconds."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope class {scope!r} (known: {', '.join(SCOPES)})")
    if org_id is None:
        return default_rate(scope)
    from twig_auth.orgs.policy import cached_effective

    text = (cached_effective(org_id).get("rateLimits") or {}).get(scope)
    return parse_rate(text) if text else default_rate(scope)
