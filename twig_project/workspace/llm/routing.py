"""Route an agent's question: built-in answers, Twig's key for the provider, or the organization's own key."""

from __future__ import annotations

import logging
from typing import Any

from django.views.decorators.debug import sensitive_variables

from twig_auth.exceptions import DecryptionFailed
from twig_auth.providerkeys.services import credential_for
from twig_project.workspace.llm.conf import llm_settings
from twig_project.workspace.llm.errors import ProviderKeyMissing, ProviderNotConfigured
from twig_project.workspace.llm.target import LABELS, Target

logger = logging.getLogger("twig_project.llm")

KEYS_PAGE = "Settings → External API keys"


@sensitive_variables("credential", "conf")
def route(agent: Any, *, org: Any) -> Target | None:
    """Return where ``agent`` (of ``org``) sends questions, or None when it answers from its FAQ (``builtin``).

    Raise :class:`ProviderKeyMissing` when the agent uses its organization's key and the organization has none
    for the provider (or it cannot be decrypted), :class:`ProviderNotConfigured` when it uses Twig's key and
    ``TWIG_LLM`` has none.
    """
    provider = agent.model_provider
    if provider == "builtin":
        return None
    conf = llm_settings()
    label = LABELS.get(provider, provider)
    if agent.key_source == "org":
        org_name = org.name
        try:
            credential = credential_for(org, provider)
        except DecryptionFailed:
            logger.error("The %s key of org %s cannot be decrypted (is its vault key still in VAULT_KEYS?)",
                         provider, org.pk)
            raise ProviderKeyMissing(f"{org_name}'s {label} key can no longer be read. An admin can add it again "
                                     f"on {KEYS_PAGE}.") from None
        if credential is None:
            what = "custom endpoint key" if provider == "custom" else f"{label} key"
            raise ProviderKeyMissing(f"{org_name} has no {what}, and this agent is set to use it. An admin can add "
                                     f"one on {KEYS_PAGE}, or the agent can use Twig's key.")
        base_url = credential.endpoint_url if provider == "custom" else conf[provider]["base_url"]
        return Target(provider=provider, wire="anthropic" if provider == "anthropic" else "openai",
                      base_url=base_url, model=agent.model_name, api_key=credential.secret, paid_by="org",
                      key_id=credential.key_id, key_masked=credential.masked)
    platform = conf.get(provider) if provider in ("openai", "anthropic") else None
    if not platform or not platform.get("api_key"):
        raise ProviderNotConfigured(f"This Twig installation has no {label} key of its own. Set the agent to use "
                                    f"your organization's {label} key (added on {KEYS_PAGE}), or ask the operator "
                                    "to configure one.")
    return Target(provider=provider, wire=provider, base_url=platform["base_url"], model=agent.model_name,
                  api_key=platform["api_key"], paid_by="platform")
