"""Checks of free-form JSON documents (agent and data source ``config``) before they reach the database, and the
rules of an agent's model setting.

PostgreSQL's ``jsonb`` refuses NUL characters and lone surrogates cannot be encoded as UTF-8; both would
turn a bad request into a server error, so they are refused here, as are oversized or deeply nested documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 6
MAX_ITEMS = 500
MAX_STRING = 20000
MAX_KEY = 200
MAX_BYTES = 64 * 1024


def bad_text(value: str) -> str | None:
    """Return why ``value`` cannot be stored as text, or None."""
    if "\x00" in value:
        return "Null characters are not allowed."
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        return "Surrogate characters are not allowed."
    return None


def json_document_problem(value: Any) -> str | None:
    """Return why ``value`` is not an acceptable JSON object, or None."""
    if not isinstance(value, Mapping):
        return "Must be a JSON object."
    problem = _walk(value, 1)
    if problem:
        return problem
    if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > MAX_BYTES:
        return f"Must be at most {MAX_BYTES // 1024} KiB of JSON."
    return None


def _walk(value: Any, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return f"Must not nest deeper than {MAX_DEPTH} levels."
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            return f"Strings must be at most {MAX_STRING} characters."
        return bad_text(value)
    if isinstance(value, Mapping):
        if len(value) > MAX_ITEMS:
            return f"Objects must have at most {MAX_ITEMS} keys."
        for key, item in value.items():
            if not isinstance(key, str):
                return "Keys must be strings."
            if len(key) > MAX_KEY:
                return f"Keys must be at most {MAX_KEY} characters."
            problem = bad_text(key) or _walk(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        if len(value) > MAX_ITEMS:
            return f"Lists must have at most {MAX_ITEMS} items."
        for item in value:
            problem = _walk(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, float) and value != value:  # NaN never reaches here from strict JSON; be safe
        return "Numbers must be finite."
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return "Numbers must be between -2^53 and 2^53."
    return None


def agent_config_problems(config: Mapping[str, Any]) -> list[str]:
    """Return what is wrong with the answer-related keys of an agent config (``faq``, ``fallback``)."""
    problems: list[str] = []
    faq = config.get("faq")
    if faq is not None:
        if not isinstance(faq, Mapping):
            problems.append('"faq" must be an object mapping keywords to answers.')
        elif not all(isinstance(k, str) and k.strip() and isinstance(v, str) for k, v in faq.items()):
            problems.append('"faq" must map non-empty keywords to text answers.')
    fallback = config.get("fallback")
    if fallback is not None and not isinstance(fallback, str):
        problems.append('"fallback" must be text.')
    return problems


# --- the agent's model setting ("use my key") ---------------------------------------------------------------

MODEL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,99}")
PROVIDERS = ("builtin", "openai", "anthropic", "custom")
KEY_SOURCES = ("platform", "org")
PROVIDER_LABELS = {"builtin": "Built-in answers", "openai": "OpenAI", "anthropic": "Anthropic",
                   "custom": "Custom (OpenAI-compatible)"}


def default_key_source(provider: str) -> str:
    """Return the key a provider uses when none is named: a custom endpoint has only the org's key."""
    return "org" if provider == "custom" else "platform"


def model_setting_problems(provider: Any, name: Any, key: Any) -> dict[str, list[str]]:
    """Return what is wrong with an agent's model setting, by part (``provider``, ``name``, ``key``).

    ``builtin`` answers from the agent's FAQ: no model name, Twig's side ("platform"). Every other provider needs
    a model name such as ``gpt-4o-mini`` or ``claude-3-5-haiku-latest``; a custom endpoint is reachable only with
    the organization's own key (its URL is stored with that key).
    """
    problems: dict[str, list[str]] = {}
    if not isinstance(provider, str) or provider not in PROVIDERS:
        problems["provider"] = [f"Choose one of {', '.join(PROVIDERS)}."]
    if not isinstance(name, str):
        problems["name"] = ["Must be a string."]
    if not isinstance(key, str) or key not in KEY_SOURCES:
        problems["key"] = ['Choose "platform" (Twig\'s key) or "org" (your organization\'s key).']
    if problems.get("provider") or problems.get("name"):
        return problems
    if provider == "builtin":
        if name:
            problems["name"] = ["Built-in answers use no model: leave the name empty."]
        if key == "org":
            problems["key"] = ['Built-in answers cost nothing: the key must be "platform".']
        return problems
    if not name:
        problems["name"] = ["Name the model, e.g. gpt-4o-mini or claude-3-5-haiku-latest."]
    elif not MODEL_NAME_RE.fullmatch(name):
        problems["name"] = ["Use at most 100 letters, digits and . _ : / @ - (starting with a letter or digit)."]
    if provider == "custom" and key == "platform":
        problems["key"] = ['A custom endpoint is called only with your organization\'s key: use "org".']
    return problems
