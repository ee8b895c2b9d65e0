"""What the wire formats share: the request to send, the conversation to send, the provider's error code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Error codes and types the providers document; only these are repeated to the caller (anything else a
# provider or a custom endpoint puts in its error body stays out of our messages).
KNOWN_ERROR_CODES = frozenset({
    "invalid_api_key", "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "rate_limit_error", "rate_limit_exceeded", "insufficient_quota", "api_error", "overloaded_error",
    "server_error", "model_not_found", "context_length_exceeded", "request_too_large", "billing_error",
    "invalid_authentication", "insufficient_permissions", "unsupported_country_region_territory",
})


class MalformedReply(ValueError):
    """The provider answered 200 with a body that is not the format's reply."""


@dataclass(frozen=True)
class WireRequest:
    url: str
    headers: dict[str, str] = field(repr=False)
    body: dict[str, Any]


def conversation(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Return the messages up to and including the last user message (the one the agent answers)."""
    items = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    last_user = max((i for i, m in enumerate(items) if m["role"] == "user"), default=-1)
    return items[: last_user + 1]


def known_code(*candidates: Any) -> str | None:
    """Return the first candidate that is a documented provider error code, else None."""
    for candidate in candidates:
        if isinstance(candidate, str) and candidate in KNOWN_ERROR_CODES:
            return candidate
    return None


def clean_text(text: str) -> str:
    """Drop characters a database cannot store (NUL, lone surrogates) from a model's reply."""
    return "".join(ch for ch in text if ch != "\x00" and not "\ud800" <= ch <= "\udfff")
