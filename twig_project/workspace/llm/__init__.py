"""Language model calls for agents: "use my key".

- :mod:`.routing` turns an agent's model setting into a :class:`~.target.Target` (which provider, which base URL,
  Twig's key from ``TWIG_LLM`` or the organization's own key, who pays), or None for built-in answers.
- :mod:`.client` calls the target in its wire format (:mod:`.openai` chat completions, :mod:`.anthropic`
  messages), with timeouts, and turns every failure into an :mod:`.errors` error with a safe message.
"""

from __future__ import annotations

from twig_project.workspace.llm.client import complete
from twig_project.workspace.llm.errors import (
    LLMError,
    ProviderFailed,
    ProviderKeyMissing,
    ProviderNotConfigured,
    ProviderTimeout,
)
from twig_project.workspace.llm.routing import route
from twig_project.workspace.llm.target import Target

__all__ = ["LLMError", "ProviderFailed", "ProviderKeyMissing", "ProviderNotConfigured", "ProviderTimeout",
           "Target", "complete", "route"]
