"""The one settings object of twig_auth.

Every setting lives in the namespaced ``TWIG_AUTH`` dict of the Django settings. Each has a default,
a one-line doc and a validator; :mod:`twig_auth.checks` turns validation failures into system checks,
and ``docs/settings.md`` is generated from :data:`SETTINGS` (``python -m twig_auth.conf``).

Read settings through ``from twig_auth.conf import app_settings`` and attribute access
(``app_settings.API_MODE``). Values are read lazily and the cache is dropped on ``setting_changed``,
so ``override_settings(TWIG_AUTH=...)`` works in tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from twig_auth.ratelimit.rates import DEFAULT_RATE_LIMITS, Rate, validate_rate_limits


def _vault_keys(value: Any) -> str | None:
    from twig_auth.vault.keys import validate_keys

    return validate_keys(value)


def _connector_providers(value: Any) -> str | None:
    from twig_auth.connectors.providers import validate_providers

    return validate_providers(value)


def _connector_redirect_uri(value: Any) -> str | None:
    """None, or the absolute callback URL registered at the providers (https; http only for localhost)."""
    from twig_auth.connectors.providers import url_problem

    return None if value is None else url_problem(value)


@dataclass(frozen=True)
class Setting:
    """One entry of ``TWIG_AUTH``: its default, what it does, and how to validate it."""

    name: str
    default: Any
    doc: str
    check: Callable[[Any], str | None]


def _int_range(lo: int, hi: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {type(value).__name__}"
        if not lo <= value <= hi:
            return f"must be between {lo} and {hi}, got {value}"
        return None

    return check


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


def _choice(*options: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {', '.join(options)}, got {value!r}"

    return check


def _rate(value: Any) -> str | None:
    """A throttle rate in the token-bucket grammar (``"10/m"``, ``"5/10s"``); zero limits and periods refused."""
    try:
        Rate.parse(value)
    except ValueError as exc:
        return str(exc)
    return None


def _dotted_path(value: Any) -> str | None:
    if not isinstance(value, str) or "." not in value:
        return f"must be a dotted import path, got {value!r}"
    try:
        import_string(value)
    except ImportError as exc:
        return f"cannot be imported: {exc}"
    return None


def _timezone(value: Any) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        return f"must be an IANA time zone name, got {value!r}"
    return None


def _roles(value: Any) -> str | None:
    """A list of org role names (``user``, ``manager``, ``admin``, ``super_admin``), possibly empty."""
    roles = ("user", "manager", "admin", "super_admin")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return f"must be a list of role names, got {value!r}"
    unknown = [v for v in value if v not in roles]
    return f"{unknown[0]!r} is not a role; use {', '.join(roles)}" if unknown else None


def _str_list(value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) and len(v) >= 16 for v in value):
        return None
    return "must be a list of strings of at least 16 characters"


def _twilio(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be a dict with ACCOUNT_SID, AUTH_TOKEN and FROM"
    unknown = set(value) - {"ACCOUNT_SID", "AUTH_TOKEN", "FROM", "BASE_URL", "TIMEOUT"}
    if unknown:
        return f"has unknown keys {sorted(unknown)}"
    return None


def _str(value: Any) -> str | None:
    return None if isinstance(value, str) and value else f"must be a non-empty string, got {value!r}"


MAX_PROXY_HOPS = 16
MAX_PROXY_RANGES = 1000


def _trusted_proxies(value: Any) -> str | None:
    from twig_auth.netaccess.allowlist import parse_network

    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= MAX_PROXY_HOPS:
            return None
        return f"must count between 0 and {MAX_PROXY_HOPS} proxy hops, got {value}"
    if not isinstance(value, list | tuple):
        return ("must be None, a number of proxy hops (e.g. 1) or a list of proxy CIDR ranges "
                f"(e.g. [\"10.0.0.0/8\"]), got {type(value).__name__}")
    if len(value) > MAX_PROXY_RANGES:
        return f"has {len(value)} ranges; at most {MAX_PROXY_RANGES}"
    for item in value:
        try:
            network = parse_network(item)
        except ValueError as exc:
            return f"has an invalid entry: {exc}"
        if network.prefixlen == 0:
            return (f"must not trust {item!r}: trusting every address lets any client choose its IP "
                    "with X-Forwarded-For")
    return None


def _optional_path(value: Any) -> str | None:
    """None, or a file path (whether it exists and parses is check twig_auth.W003's job)."""
    if value is None or (isinstance(value, str) and value):
        return None
    return f"must be None or a file path, got {value!r}"


def _public_origin(value: Any) -> str | None:
    """None, or ``https://host[:port]`` (http only for localhost, for development and tests), no path."""
    from urllib.parse import urlsplit

    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be None or an origin such as \"https://auth.example.com\", got {value!r}"
    parts = urlsplit(value)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        return f"must be an https origin (http only for localhost), got {value!r}"
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return f"must be an origin only (scheme, host, optional port), got {value!r}"
    return None


def _nameservers(value: Any) -> str | None:
    """None (the system resolver) or a list of "ip", "ip:port" or "[ipv6]:port"."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        return "must be None or a non-empty list of nameserver addresses"
    from twig_auth.sso.dns import parse_nameserver

    for item in value:
        try:
            parse_nameserver(item)
        except ValueError as exc:
            return f"has an invalid entry: {exc}"
    return None


SETTINGS: tuple[Setting, ...] = (
    Setting("API_MODE", "live", "Mode of this deployment; API keys of the other environment are refused.",
            _choice("live", "test")),
    Setting("REDIS_CACHE_ALIAS", "default",
            "Cache alias whose Redis connection holds counters; without a django-redis cache, "
            "the database is used.", _str),
    Setting("PASSWORD_MIN_LENGTH", 8, "Minimum password length in characters.", _int_range(8, 128)),
    Setting("PASSWORD_MAX_LENGTH", 1024,
            "Maximum password length; longer input is refused before hashing.", _int_range(72, 65536)),
    Setting("PASSWORD_REQUIRE_CLASSES", True,
            "Require an uppercase letter, a lowercase letter, a digit and a special character.", _bool),
    Setting("LOCKOUT_MAX_ATTEMPTS", 5, "Failed logins that lock an account (org policy default).",
            _int_range(1, 100)),
    Setting("LOCKOUT_WINDOW_SECONDS", 900, "Window in which failed logins are counted (org policy default).",
            _int_range(60, 86400)),
    Setting("LOCKOUT_LOCK_SECONDS", 900, "How long a locked account stays locked (org policy default).",
            _int_range(60, 86400 * 7)),
    Setting("LOGIN_IP_RATE", "30/m", "Per-IP throttle of sign-in POSTs (login page, POST /api/auth/token) and of token "
            "refresh and revoke.",
            _rate),
    Setting("LOGIN_ACCOUNT_RATE", "10/m", "Per-account (typed email) throttle of sign-in POSTs, from any IP.",
            _rate),
    Setting("PASSWORD_RESET_RATE", "5/h", "Per-IP and per-email throttle of password-reset requests.", _rate),
    Setting("SESSION_TIMEOUT", 604800, "Idle session expiry in seconds (org policy default).",
            _int_range(300, 86400 * 90)),
    Setting("SESSION_RENEW_ON_ACTIVITY", True, "Activity extends the session (org policy default).", _bool),
    Setting("SESSION_MAX_CONCURRENT", 3, "Concurrent sessions per member (org policy default).",
            _int_range(1, 100)),
    Setting("SESSION_ENFORCE_IP_BINDING", False, "End a session used from another IP (org policy default).",
            _bool),
    Setting("MFA_REQUIRED_FOR_ADMINS", True, "Require MFA for admin and super_admin (org policy default).",
            _bool),
    Setting("MFA_REQUIRED_FOR_ALL", False, "Require MFA for every member (org policy default).", _bool),
    Setting("MFA_GRACE_PERIOD_DAYS", 7, "Days to enroll after MFA first applies (org policy default).",
            _int_range(0, 90)),
    Setting("MFA_TOTP_ISSUER", "Twig", "Issuer shown in authenticator apps next to the account name.", _str),
    Setting("MFA_TOTP_TOLERANCE", 1, "TOTP steps of clock drift accepted either side of now (30 s each).",
            _int_range(0, 3)),
    Setting("MFA_MAX_FAILURES", 5, "Wrong second-factor codes per account before verification pauses.",
            _int_range(1, 100)),
    Setting("MFA_FAILURE_WINDOW_SECONDS", 900, "Window in which wrong second-factor codes are counted.",
            _int_range(60, 86400)),
    Setting("MFA_LOCK_SECONDS", 900, "How long second-factor verification pauses after too many wrong codes.",
            _int_range(30, 86400)),
    Setting("MFA_CODE_RATE", "10/m", "Per-IP throttle of second-factor code POSTs (forms and the token otp).",
            _rate),
    Setting("MFA_ACCOUNT_RATE", "10/m", "Per-account throttle of second-factor code POSTs, from any IP.", _rate),
    Setting("MFA_RECOVERY_CODE_COUNT", 10, "Recovery codes generated at a time.", _int_range(4, 20)),
    Setting("MFA_STEP_UP_SECONDS", 300, "How recent a second factor must be for sensitive actions.",
            _int_range(30, 3600)),
    Setting("MFA_LOGIN_SECONDS", 600, "Time allowed between the password and the second factor at login.",
            _int_range(60, 3600)),
    Setting("MFA_SMS_GATEWAY", "twig_auth.mfa.sms.ConsoleGateway",
            "Class that sends SMS codes (ConsoleGateway prints them; TwilioGateway posts to a Twilio-compatible API).",
            _dotted_path),
    Setting("MFA_SMS_CODE_SECONDS", 300, "How long an SMS code is valid.", _int_range(60, 1800)),
    Setting("MFA_SMS_RESEND_SECONDS", 30, "Minimum wait between two SMS codes to the same device.",
            _int_range(0, 3600)),
    Setting("MFA_SMS_MAX_PER_HOUR", 5, "Most SMS codes sent to one device in an hour.", _int_range(1, 100)),
    Setting("MFA_TWILIO", {},
            "TwilioGateway options: ACCOUNT_SID, AUTH_TOKEN, FROM, and BASE_URL (default https://api.twilio.com).",
            _twilio),
    Setting("AUDIT_RETENTION_DAYS", 90, "Days audit events are kept (org policy default; above 90 is "
            "enterprise only).", _int_range(1, 3650)),
    Setting("AUDIT_ACCESS_COALESCE_SECONDS", 3600,
            "RESOURCE_ACCESS is recorded once per actor, credential, resource and action in this window (0: every "
            "read).", _int_range(0, 86400)),
    Setting("AUDIT_PURGE_BATCH_SIZE", 1000, "Audit events deleted per transaction by twig_audit_purge.",
            _int_range(10, 100000)),
    Setting("TIMEZONE", "UTC", "Default time zone of an organization.", _timezone),
    Setting("DEACTIVATE_INACTIVE_AFTER_DAYS", 0,
            "Deactivate members inactive (no login, API-key use or token refresh) this many days when "
            "`twig_deactivate_inactive` runs; 0 is off (org policy default of accessReview.deactivateAfterDays).",
            _int_range(0, 3650)),
    Setting("ACCESS_REVIEW_KEY_ROTATE_DAYS", 90, "Access review: flag API keys older than this many days 'rotate'.",
            _int_range(1, 3650)),
    Setting("ACCESS_REVIEW_KEY_UNUSED_DAYS", 90,
            "Access review: flag API keys unused this many days (or never used after a week) 'delete'.",
            _int_range(1, 3650)),
    Setting("ALERTS_ENABLED", True, "Mail security alerts to org admins and send security_alert_raised.", _bool),
    Setting("ALERT_FAILED_LOGINS_PER_ACCOUNT", 10,
            "Failed logins for one account within ALERT_FAILED_LOGIN_WINDOW_SECONDS that raise an alert.",
            _int_range(1, 10000)),
    Setting("ALERT_FAILED_LOGINS_PER_IP", 20,
            "Failed logins from one IP within ALERT_FAILED_LOGIN_WINDOW_SECONDS that raise an alert.",
            _int_range(1, 100000)),
    Setting("ALERT_FAILED_LOGIN_WINDOW_SECONDS", 3600, "Window in which failed logins are counted for alerts.",
            _int_range(60, 86400 * 7)),
    Setting("ALERT_DEDUPE_SECONDS", 3600,
            "At most one alert per org, kind and subject (account, IP) in this many seconds, across processes.",
            _int_range(1, 86400 * 30)),
    Setting("DEFAULT_PLAN", "free", "Plan of organizations created without one.",
            _choice("free", "team", "enterprise")),
    Setting("CLOCK", "twig_auth.core.clock.system_now",
            "Callable returning the current aware datetime; the one clock seam.", _dotted_path),
    Setting("API_KEY_HASHER", "twig_auth.apikeys.hashers.BcryptKeyHasher",
            "Class that hashes API key secrets (bcrypt cost 12, or HmacSha256KeyHasher).", _dotted_path),
    Setting("API_KEY_BCRYPT_ROUNDS", 12, "bcrypt cost of API key hashes.", _int_range(4, 16)),
    Setting("API_KEY_PEPPERS", [], "HMAC peppers for HmacSha256KeyHasher, newest first (default: SECRET_KEY).",
            _str_list),
    Setting("API_KEY_CACHE_SECONDS", 300, "How long a verified key is cached (revocation deletes it at once).",
            _int_range(1, 3600)),
    Setting("API_KEY_NEGATIVE_CACHE_SECONDS", 60, "How long a wrong key is remembered as wrong.",
            _int_range(1, 3600)),
    Setting("API_KEY_HASHES_PER_MINUTE", 10,
            "Most hash checks per key id and minute; a wrong-secret flood beyond it is refused unhashed.",
            _int_range(1, 1000)),
    Setting("API_KEY_USAGE_FLUSH_SECONDS", 10, "How often buffered usage counts are written to the database.",
            _int_range(1, 3600)),
    Setting("SESSION_SIGNING_KEYS", [],
            "Secrets that sign twig_session cookies, newest first; all verify (default: SECRET_KEY).", _str_list),
    Setting("SESSION_RENEW_WITHIN_SECONDS", 3600,
            "Re-issue the session cookie silently when less than this much of its life is left.",
            _int_range(60, 86400)),
    Setting("SESSION_ACTIVITY_WRITE_SECONDS", 300,
            "Write a session's last activity to the database at most this often.", _int_range(1, 86400)),
    Setting("JWT_SIGNING_KEYS", [],
            "HS256 secrets of access tokens, newest first: the first signs, all verify (default: derived from "
            "SECRET_KEY).", _str_list),
    Setting("ACCESS_TOKEN_SECONDS", 3600, "Lifetime of a JWT access token.", _int_range(60, 86400)),
    Setting("REFRESH_TOKEN_SECONDS", 86400 * 30, "Lifetime of a refresh token (each use rotates it).",
            _int_range(3600, 86400 * 365)),
    Setting("RATE_LIMITS", dict(DEFAULT_RATE_LIMITS),
            "Token-bucket rate per API key and scope class (execute, write, read, admin), as 'count/[n]unit' "
            "with unit s, m, h or d; the bucket holds count tokens and refills fully over the period.",
            validate_rate_limits),
    Setting("LOGIN_REDIRECT_URL", "/", "Where a successful login goes when no safe ?next= is given.", _str),
    Setting("TRUSTED_PROXIES", None,
            "Proxies in front of Django whose X-Forwarded-For is believed: None (the socket address only), "
            "a hop count N (client = Nth entry from the right), or a list of proxy CIDR ranges.",
            _trusted_proxies),
    Setting("SSO_BASE_URL", None,
            "Public origin of this deployment (https://auth.example.com); SAML entity ids and ACS URLs are built "
            "from it, never from the request's Host header.", _public_origin),
    Setting("SSO_SP_PRIVATE_KEY_FILE", None,
            "PEM private key the SAML service provider signs AuthnRequests with (and decrypts assertions).",
            _optional_path),
    Setting("SSO_SP_CERTIFICATE_FILE", None,
            "PEM certificate of that key, published in every org's SP metadata.", _optional_path),
    Setting("SSO_DNS_NAMESERVERS", None,
            "Nameservers asked for domain-verification TXT records: None (the system resolver) or a list of "
            "\"ip\", \"ip:port\" or \"[ipv6]:port\".", _nameservers),
    Setting("SSO_BREAK_GLASS_ROLES", ["super_admin"],
            "Roles whose members may still sign in with a password (and their second factor) when their org "
            "enforces SSO, so a broken IdP cannot lock everyone out; each such login is audited as break-glass.",
            _roles),
    Setting("VAULT_KEYS", [],
            "AES-256 keys that encrypt secrets held for users (provider keys, OAuth tokens, client secrets), as "
            "\"<version>:<base64 of 32 bytes>\" strings; the first encrypts, every one decrypts. Required "
            "(check twig_auth.E009); `manage.py twig_vault_keygen` prints a new one.", _vault_keys),
    Setting("CONNECTOR_PROVIDERS", {},
            "OAuth 2.0 providers of connectors, slug -> {name, authorization_endpoint, token_endpoint, "
            "revocation_endpoint, client_id, client_secret, scopes, token_endpoint_auth_method "
            "(client_secret_basic|client_secret_post), authorize_params, api_probe_url}; each entry is merged over "
            "the built-in google_drive and slack defaults (vendor endpoints, no client id: not configured).",
            _connector_providers),
    Setting("CONNECTOR_REDIRECT_URI", None,
            "Callback URL registered at connector providers; None: SSO_BASE_URL + /connectors/callback/, or the "
            "request's own origin when SSO_BASE_URL is unset.", _connector_redirect_uri),
    Setting("CONNECTOR_HTTP_TIMEOUT", 10, "Seconds a call to a connector provider (token, revoke, API) may take.",
            _int_range(1, 120)),
    Setting("CONNECTOR_REFRESH_LEEWAY_SECONDS", 60,
            "Refresh a connector's access token when it expires within this many seconds.", _int_range(0, 3600)),
    Setting("DATABASE_RETRY_AFTER_SECONDS", 5,
            "Retry-After of the 503 service_unavailable answered while the database cannot be reached.",
            _int_range(1, 3600)),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class AppSettings:
    """Lazy attribute access to ``settings.TWIG_AUTH`` merged over the defaults."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def _user_settings(self) -> dict[str, Any]:
        from django.conf import settings

        value = getattr(settings, "TWIG_AUTH", {})
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in _BY_NAME:
            raise AttributeError(f"twig_auth has no setting {name!r}")
        if name not in self._cache:
            self._cache[name] = self._user_settings().get(name, _BY_NAME[name].default)
        return self._cache[name]

    def errors(self) -> list[tuple[str, str]]:
        """Return ``(setting, problem)`` for every invalid or unknown key in ``TWIG_AUTH``."""
        problems: list[tuple[str, str]] = []
        for key, value in self._user_settings().items():
            spec = _BY_NAME.get(key)
            if spec is None:
                problems.append((key, "is not a twig_auth setting"))
                continue
            message = spec.check(value)
            if message:
                problems.append((key, message))
        return problems

    def reload(self) -> None:
        self._cache.clear()


app_settings = AppSettings()


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "TWIG_AUTH":
        app_settings.reload()
        from twig_auth.apikeys import hashers, verification
        from twig_auth.core import clock
        from twig_auth.tokens import jwt

        clock.reset()
        jwt.reset()
        hashers.reset()
        verification.clear_local()
        from twig_auth.usersessions.policy import forget_policies

        forget_policies()
        from twig_auth.mfa import sms

        sms.reset()
        from twig_auth.vault import keys

        keys.reset()


def settings_reference_markdown() -> str:
    """Return the settings reference page (``docs/settings.md``) as Markdown."""
    lines = [
        "# Settings reference",
        "",
        "Every setting of twig_auth lives in one dict, `TWIG_AUTH`, in your Django settings.",
        "Invalid values fail `manage.py check` with `twig_auth.E001`; unknown keys warn with `twig_auth.W001`.",
        "This page is generated from `twig_auth/conf.py` (`python -m twig_auth.conf > docs/settings.md`).",
        "",
        "| Setting | Default | What it does |",
        "|---|---|---|",
    ]
    for spec in SETTINGS:
        lines.append(f"| `{spec.name}` | `{spec.default!r}` | {spec.doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(settings_reference_markdown(), end="")
