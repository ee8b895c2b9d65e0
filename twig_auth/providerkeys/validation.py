"""Validate an external provider key and a custom endpoint: pure functions, no ORM.

Messages never repeat the value they refuse: a key pasted in the wrong field must not come back in a page, a
log line or an API error.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from twig_auth.exceptions import InvalidInput

OPENAI = "openai"
ANTHROPIC = "anthropic"
CUSTOM = "custom"
PROVIDERS = (OPENAI, ANTHROPIC, CUSTOM)
PROVIDER_LABELS = {OPENAI: "OpenAI", ANTHROPIC: "Anthropic", CUSTOM: "Custom (OpenAI-compatible)"}
PREFIXES = {OPENAI: "sk-", ANTHROPIC: "sk-ant-"}

MIN_SECRET = 8
MAX_SECRET = 512
MAX_ENDPOINT = 500
LOCAL_NAMES = {"localhost"}


def clean_provider(provider: Any) -> str:
    """Return ``provider`` if it is one of :data:`PROVIDERS`; raise :class:`InvalidInput` (``provider``)."""
    if isinstance(provider, str) and provider in PROVIDERS:
        return provider
    raise InvalidInput({"provider": [f"Choose one of {', '.join(PROVIDER_LABELS.values())}."]})


def secret_problem(provider: str, secret: Any) -> str | None:
    """Return why ``secret`` is not a usable key for ``provider`` (already stripped), or None."""
    if not isinstance(secret, str) or not secret:
        return "Enter the API key."
    if not MIN_SECRET <= len(secret) <= MAX_SECRET:
        return f"An API key has {MIN_SECRET} to {MAX_SECRET} characters."
    if any(ch.isspace() for ch in secret):
        return "An API key has no spaces or line breaks inside: copy it again from the provider."
    if not all("!" <= ch <= "~" for ch in secret):
        return "An API key has only printable ASCII characters (letters, digits and punctuation)."
    label = PROVIDER_LABELS[provider]
    prefix = PREFIXES.get(provider)
    if provider == OPENAI and secret.startswith(PREFIXES[ANTHROPIC]):
        return "This looks like an Anthropic key (sk-ant-…): choose Anthropic as the provider."
    if prefix and not secret.startswith(prefix):
        return f"{label} keys start with “{prefix}”: copy the whole key from the {label} dashboard."
    return None


def clean_secret(provider: str, secret: Any) -> str:
    """Return ``secret`` stripped of surrounding whitespace; raise :class:`InvalidInput` (``secret``)."""
    value = secret.strip() if isinstance(secret, str) else secret
    problem = secret_problem(provider, value)
    if problem:
        raise InvalidInput({"secret": [problem]})
    return str(value)


def _is_local(host: str) -> bool:
    if host in LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback  # 127.0.0.0/8 and ::1


def endpoint_problem(url: Any) -> str | None:
    """Return why ``url`` (already stripped) is not a usable custom endpoint, or None."""
    if not isinstance(url, str) or not url:
        return "Enter the endpoint's base URL, e.g. https://llm.example.com/v1."
    if len(url) > MAX_ENDPOINT:
        return f"Use at most {MAX_ENDPOINT} characters."
    if not all("!" <= ch <= "~" for ch in url):
        return "Use a URL without spaces or non-ASCII characters (write international domain names in punycode)."
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in 0–65535
    except ValueError:
        return "Enter a valid URL, e.g. https://llm.example.com/v1."
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("https", "http") or not host or port == 0:
        return "Enter a valid URL, e.g. https://llm.example.com/v1."
    if "@" in parts.netloc:
        return "Leave the user name and password out of the URL: the key is sent in a header."
    if "?" in url:
        return "Leave the query string (?…) out of the URL."
    if "#" in url:
        return "Leave the fragment (#…) out of the URL."
    if scheme == "http" and not _is_local(host):
        return "Use https: the key would travel in clear over http (http is allowed only for localhost)."
    return None


def clean_endpoint(provider: str, url: Any) -> str:
    """Return the endpoint for ``provider``: the custom provider's base URL without a trailing slash, "" for
    the others; raise :class:`InvalidInput` (``endpoint_url``)."""
    value = url.strip() if isinstance(url, str) else url
    if provider != CUSTOM:
        if value in (None, ""):
            return ""
        raise InvalidInput({"endpoint_url": [
            f"Only the Custom provider has an endpoint: leave it empty for {PROVIDER_LABELS[provider]}."]})
    problem = endpoint_problem(value)
    if problem:
        raise InvalidInput({"endpoint_url": [problem]})
    value = str(value).rstrip("/")
    scheme, _, rest = value.partition("://")
    return f"{scheme.lower()}://{rest}"


def clean(*, provider: Any, secret: Any, endpoint_url: Any = "") -> tuple[str, str, str]:
    """Return ``(provider, secret, endpoint_url)`` cleaned; raise :class:`InvalidInput` naming every bad field."""
    provider = clean_provider(provider)
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, str] = {}
    for field, cleaner, value in (("secret", clean_secret, secret), ("endpoint_url", clean_endpoint, endpoint_url)):
        try:
            cleaned[field] = cleaner(provider, value)
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidInput(errors)
    return provider, cleaned["secret"], cleaned["endpoint_url"]
