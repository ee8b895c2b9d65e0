"""Fixtures of the external API key tests: keys that pass validation, and a helper that stores one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from twig_auth.providerkeys import services
from twig_auth.providerkeys.models import ExternalApiKey

OPENAI_KEY = "sk-proj-Tq3Zx9LmN2bV7cR1wK5yH8uJ0aE4dF6gwxyz"
ANTHROPIC_KEY = "sk-ant-api03-Zq8Rm2Lx7Vb4Nc1Kw9Yh3Uj6Ta5Ed0Fg-Pq2Rs4Tu6Vw8Xyzab"
CUSTOM_KEY = "local-llm-Kx93hT7bQ2vR8mN1cD4f"


@pytest.fixture
def add_key(db: None) -> Callable[..., ExternalApiKey]:
    """Return ``add(org, provider="openai", secret=None, endpoint_url="")``: a key stored through the service."""

    def add(org: Any, provider: str = "openai", secret: str | None = None, endpoint_url: str = "",
            **kw: Any) -> ExternalApiKey:
        default = {"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY, "custom": CUSTOM_KEY}[provider]
        if provider == "custom" and not endpoint_url:
            endpoint_url = "https://llm.example.test/v1"
        return services.save_external_key(org=org, provider=provider, secret=secret or default,
                                          endpoint_url=endpoint_url, **kw)

    return add
