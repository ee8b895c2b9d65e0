"""Where a model call goes, with which key, and who pays: the result of routing, the input of the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

LABELS = {"openai": "OpenAI", "anthropic": "Anthropic", "custom": "Your custom endpoint"}


@dataclass(frozen=True)
class Target:
    """One model call's destination. ``repr()`` leaves the key out.

    ``provider`` is the agent's (openai, anthropic, custom); ``wire`` the format spoken (openai or anthropic;
    a custom endpoint speaks OpenAI's); ``paid_by`` is ``platform`` (Twig's key) or ``org`` (``key_id`` and
    ``key_masked`` then name the organization's key).
    """

    provider: str
    wire: str
    base_url: str
    model: str
    api_key: str = field(repr=False)
    paid_by: str
    key_id: str | None = None
    key_masked: str = ""

    @property
    def label(self) -> str:
        """Name the provider in error messages (a custom endpoint by its host: the org's own configuration)."""
        if self.provider == "custom":
            host = urlsplit(self.base_url).hostname or "?"
            return f"Your custom endpoint ({host})"
        return LABELS.get(self.provider, self.provider)
