"""The project setting ``TWIG_LLM`` (Django settings, not ``TWIG_AUTH``), read at each call with its defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "openai": {"base_url": "https://api.openai.com/v1", "api_key": ""},
    "anthropic": {"base_url": "https://api.anthropic.com", "api_key": ""},
    "timeout": 30,  # seconds for the whole answer
    "connect_timeout": 5,  # seconds to open the connection
    "max_tokens": 1024,  # Anthropic requires a cap on the reply; OpenAI gets none
}
PROVIDERS = ("openai", "anthropic")


def llm_settings() -> dict[str, Any]:
    """Return ``settings.TWIG_LLM`` over :data:`DEFAULTS` (each provider's dict merged key by key)."""
    configured = getattr(settings, "TWIG_LLM", None) or {}
    merged = {**DEFAULTS, **{k: v for k, v in configured.items() if k not in PROVIDERS}}
    for provider in PROVIDERS:
        merged[provider] = {**DEFAULTS[provider], **(configured.get(provider) or {})}
    return merged
