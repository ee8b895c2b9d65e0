"""A logging filter that keeps secrets out of log lines and keeps every record on one line."""

from __future__ import annotations

import logging
import re
from typing import Any

SENSITIVE_KEYS = re.compile(r"pass(word)?|secret|token|api[_-]?key|authorization|otp|cookie|csrf", re.I)
# key=value or "key": "value" pairs whose key looks sensitive
_PAIR = re.compile(
    r"(?P<key>[\"']?[A-Za-z_\-]*(?:pass(?:word)?|secret|token|api[_-]?key|authorization|otp)[A-Za-z_\-]*"
    r"[\"']?\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,&;}]+)",
    re.I,
)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._\-~+/=]+", re.I)
_TWIG_KEY = re.compile(r"twigsk_(live|test)_[A-Za-z0-9_]+")
# provider keys (OpenAI sk-…, sk-proj-…, Anthropic sk-ant-…) and vault tokens, wherever they appear
_PROVIDER_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}")
_VAULT_TOKEN = re.compile(r"\btv1\.[0-9]{1,10}\.[A-Za-z0-9_\-]{16,}")
REDACTED = "[redacted]"
# line breaks and other control characters a request can carry into a message (a path, a header): escaped so
# one record stays one line and nobody can forge a log line (OWASP ASVS 7.3.1); a tab stays a tab
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


def escape_controls(text: str) -> str:
    """Return ``text`` with line breaks and control characters written as escapes (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def redact_text(text: str) -> str:
    """Return ``text`` with values of sensitive-looking pairs, bearer tokens, API keys (ours and providers') and
    vault ciphertexts masked."""
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _PAIR.sub(lambda m: m.group("key") + REDACTED, text)
    text = _PROVIDER_KEY.sub(REDACTED, text)
    text = _VAULT_TOKEN.sub(REDACTED, text)
    return _TWIG_KEY.sub(REDACTED, text)


def redact_value(key: str, value: Any) -> Any:
    """Return ``value`` masked when ``key`` names a secret, recursing into dicts and lists."""
    if SENSITIVE_KEYS.search(str(key)):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact_value(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value("", v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactSecretsFilter(logging.Filter):
    """Mask secrets in the formatted message of every record that passes through, and escape line breaks and
    control characters in it so a record is one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  (a broken format string must not break logging)
            return True
        redacted = escape_controls(redact_text(message))
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
