"""Errors of a model call. Each has a stable ``code`` and the HTTP ``status`` the API answers with.

The detail is written by Twig, never copied from the provider's body: providers echo parts of the key they
refused (OpenAI: "Incorrect API key provided: sk-abc…wxyz"), and a custom endpoint may echo anything.
"""

from __future__ import annotations


class LLMError(Exception):
    """Base of the errors of :func:`twig_project.workspace.llm.complete` and of routing."""

    code = "provider_error"
    status = 502
    default_detail = "The model provider could not answer."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


class ProviderFailed(LLMError):
    """The provider refused the call, failed, or answered something unreadable."""

    code = "provider_error"
    status = 502


class ProviderTimeout(LLMError):
    """The provider did not answer in time (``TWIG_LLM["timeout"]``, ``["connect_timeout"]``)."""

    code = "provider_timeout"
    status = 504
    default_detail = "The model provider did not answer in time."


class ProviderKeyMissing(LLMError):
    """The agent uses the organization's key, and the organization has none for its provider (or it is unreadable)."""

    code = "provider_key_missing"
    status = 409
    default_detail = "Your organization has no API key for this agent's model provider."


class ProviderNotConfigured(LLMError):
    """The agent uses Twig's key, and this installation has none for its provider."""

    code = "provider_not_configured"
    status = 503
    default_detail = "This Twig installation has no API key for this agent's model provider."
