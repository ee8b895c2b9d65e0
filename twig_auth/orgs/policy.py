"""The org settings document: defaults from ``TWIG_AUTH``, per-org overrides, validation, merging.

The document uses the product docs' camelCase names::

    {"session": {"timeout", "renewOnActivity", "maxConcurrent", "enforceIPBinding"},
     "mfa": {"requiredForAdmins", "requiredForAll", "gracePeriodDays"},
     "lockout": {"maxAttempts", "windowSeconds", "lockSeconds"},
     "ipAllowlist": ["<CIDR>", ...], "sso": {"enforce", "allowedDomains"},
     "rateLimits": {"execute", "write", "read", "admin"},
     "accessReview": {"deactivateAfterDays"},
     "auditRetentionDays", "timezone"}
"""

from __future__ import annotations

import copy
import ipaddress
import re
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twig_auth.conf import app_settings
from twig_auth.exceptions import InvalidInput, PermissionDenied
from twig_auth.ratelimit.rates import DEFAULT_RATE_LIMITS, SCOPES, Rate

FREE_AUDIT_RETENTION_MAX = 90
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

Checker = Callable[[Any], str | None]


def _int(lo: int, hi: int) -> Checker:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return "Must be a whole number."
        if not lo <= v <= hi:
            return f"Must be between {lo} and {hi}."
        return None

    check.bounds = (lo, hi)  # type: ignore[attr-defined]  (read by the OpenAPI schema of the settings document)
    return check


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "Must be true or false."


def _cidrs(v: Any) -> str | None:
    if not isinstance(v, list):
        return "Must be a list of CIDR ranges."
    if len(v) > 500:
        return "At most 500 ranges."
    for item in v:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            return f"{str(item)[:60]!r} is not a valid IPv4 or IPv6 CIDR range."
        if not isinstance(item, str):
            return "Each range must be a string such as \"192.168.1.0/24\"."
    return None


def _domains(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(d, str) for d in v):
        return "Must be a list of domain names."
    for d in v:
        if not DOMAIN_RE.match(d.lower()):
            return f"{d[:60]!r} is not a valid domain name."
    return None


def _rate(v: Any) -> str | None:
    if not isinstance(v, str):
        return 'Must be a rate such as "500/m".'
    try:
        Rate.parse(v)
    except ValueError as exc:
        return f"{str(exc)[:1].upper()}{str(exc)[1:120]}."
    return None


def _days_or_off(v: Any) -> str | None:
    """null or 0 (off), or a number of days."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        return "Must be a whole number of days, or null (off)."
    if not 0 <= v <= 3650:
        return "Must be between 1 and 3650 days, or 0 / null (off)."
    return None


def _tz(v: Any) -> str | None:
    if not isinstance(v, str) or not v or len(v) > 64:
        return "Must be a time zone name such as \"Europe/Berlin\"."
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{v[:64]!r} is not a known time zone."
    return None


# section -> key -> checker; None as section key marks a top-level scalar
SCHEMA: dict[str, dict[str, Checker] | Checker] = {
    "session": {"timeout": _int(300, 86400 * 90), "renewOnActivity": _bool,
                "maxConcurrent": _int(1, 100), "enforceIPBinding": _bool},
    "mfa": {"requiredForAdmins": _bool, "requiredForAll": _bool, "gracePeriodDays": _int(0, 90)},
    "lockout": {"maxAttempts": _int(1, 100), "windowSeconds": _int(60, 86400),
                "lockSeconds": _int(60, 86400 * 7)},
    "ipAllowlist": _cidrs,
    "sso": {"enforce": _bool, "allowedDomains": _domains},
    "rateLimits": {scope: _rate for scope in SCOPES},
    "accessReview": {"deactivateAfterDays": _days_or_off},
    "auditRetentionDays": _int(1, 3650),
    "timezone": _tz,
}


def defaults() -> dict[str, Any]:
    """Return the settings document every org starts from."""
    s = app_settings
    return {
        "session": {"timeout": s.SESSION_TIMEOUT, "renewOnActivity": s.SESSION_RENEW_ON_ACTIVITY,
                    "maxConcurrent": s.SESSION_MAX_CONCURRENT, "enforceIPBinding": s.SESSION_ENFORCE_IP_BINDING},
        "mfa": {"requiredForAdmins": s.MFA_REQUIRED_FOR_ADMINS, "requiredForAll": s.MFA_REQUIRED_FOR_ALL,
                "gracePeriodDays": s.MFA_GRACE_PERIOD_DAYS},
        "lockout": {"maxAttempts": s.LOCKOUT_MAX_ATTEMPTS, "windowSeconds": s.LOCKOUT_WINDOW_SECONDS,
                    "lockSeconds": s.LOCKOUT_LOCK_SECONDS},
        "ipAllowlist": [],
        "sso": {"enforce": False, "allowedDomains": []},
        "rateLimits": {**DEFAULT_RATE_LIMITS, **(s.RATE_LIMITS or {})},
        "accessReview": {"deactivateAfterDays": s.DEACTIVATE_INACTIVE_AFTER_DAYS or None},
        "auditRetentionDays": min(s.AUDIT_RETENTION_DAYS, FREE_AUDIT_RETENTION_MAX),
        "timezone": s.TIMEZONE,
    }


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``patch`` merged in: nested sections merge key by key, lists replace."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def effective(org: Any) -> dict[str, Any]:
    """Return the org's full settings document: defaults with its overrides merged in."""
    return merge(defaults(), org.settings or {})


CACHE_SECONDS = 30
_cached: dict[Any, tuple[dict[str, Any], float]] = {}


def cached_effective(org_id: Any) -> dict[str, Any]:
    """Return :func:`effective` of the org with id ``org_id`` (the defaults without one), cached per process
    for 30 s: what per-request checks (session lifetime, MFA requirement) read. Do not mutate the result."""
    hit = _cached.get(org_id)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    from twig_auth.orgs.models import Organization

    org = Organization.objects.filter(pk=org_id).first() if org_id else None
    document = effective(org) if org else defaults()
    _cached[org_id] = (document, time.monotonic() + CACHE_SECONDS)
    return document


def forget_cached() -> None:
    """Drop the per-process cache (settings changed in this process)."""
    _cached.clear()


def validate_patch(patch: Any, *, enterprise: bool) -> dict[str, Any]:
    """Check a PATCH document and return it normalized.

    Raise :class:`InvalidInput` naming every bad field (dotted paths such as ``session.timeout``), or
    :class:`PermissionDenied` when a non-enterprise org sets an enterprise-only value.
    """
    if not isinstance(patch, dict):
        raise InvalidInput({"non_field_errors": ["Expected a JSON object."]})
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key, value in patch.items():
        spec = SCHEMA.get(key)
        if spec is None:
            errors[str(key)[:64]] = ["Unknown setting."]
        elif isinstance(spec, dict):
            if not isinstance(value, dict):
                errors[key] = ["Must be an object."]
                continue
            section: dict[str, Any] = {}
            for sub, sub_value in value.items():
                check = spec.get(sub)
                path = f"{key}.{str(sub)[:64]}"
                problem = "Unknown setting." if check is None else check(sub_value)
                if problem:
                    errors[path] = [problem]
                else:
                    section[sub] = sub_value
            clean[key] = section
        else:
            problem = spec(value)
            if problem:
                errors[key] = [problem]
            else:
                clean[key] = value
    if errors:
        raise InvalidInput(errors)
    if "sso" in clean and "allowedDomains" in clean["sso"]:
        clean["sso"]["allowedDomains"] = sorted({d.lower() for d in clean["sso"]["allowedDomains"]})
    if not enterprise:
        _refuse_enterprise_only(clean)
    return clean


def _refuse_enterprise_only(clean: dict[str, Any]) -> None:
    reasons = []
    if clean.get("ipAllowlist"):
        reasons.append("ipAllowlist")
    if "sso" in clean and any(clean["sso"].get(k) for k in ("enforce", "allowedDomains")):
        reasons.append("sso")
    if clean.get("rateLimits"):
        reasons.append("rateLimits")
    if clean.get("auditRetentionDays", 0) > FREE_AUDIT_RETENTION_MAX:
        reasons.append("auditRetentionDays")
    if reasons:
        raise PermissionDenied(f"{', '.join(reasons)} require{'s' if len(reasons) == 1 else ''} "
                               "the enterprise plan.", fields=reasons)
