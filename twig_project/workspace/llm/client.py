"""Call a model provider: one HTTPS POST in the target's wire format, bounded in time and size.

Every failure becomes a :class:`~.errors.ProviderFailed` or :class:`~.errors.ProviderTimeout` whose detail Twig
wrote (provider, HTTP status, the provider's documented error code at most): never the provider's body, never
the key. Redirects are not followed, so the key is never sent to a second host.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import requests
from django.views.decorators.debug import sensitive_variables

from twig_project.workspace.llm import anthropic, openai
from twig_project.workspace.llm.conf import llm_settings
from twig_project.workspace.llm.errors import ProviderFailed, ProviderTimeout
from twig_project.workspace.llm.target import Target
from twig_project.workspace.llm.wire import MalformedReply, clean_text

logger = logging.getLogger("twig_project.llm")

WIRES: dict[str, ModuleType] = {"openai": openai, "anthropic": anthropic}
MAX_REPLY_BYTES = 2 * 1024 * 1024
USER_AGENT = "twig/0.1 (+use-my-key)"
KEYS_PAGE = "Settings → External API keys"


@sensitive_variables("wire_request", "target")
def complete(target: Target, *, system: str, messages: Sequence[Mapping[str, str]]) -> str:
    """Return the model's answer to the last user message of ``messages`` under ``system`` instructions."""
    conf = llm_settings()
    wire = WIRES[target.wire]
    wire_request = wire.build(target, system=system, messages=messages, max_tokens=int(conf["max_tokens"]))
    timeout, connect_timeout = float(conf["timeout"]), float(conf["connect_timeout"])
    deadline = time.monotonic() + timeout  # a network deadline, not application time: not the clock seam
    try:
        response = requests.post(wire_request.url, json=wire_request.body,
                                 headers={**wire_request.headers, "User-Agent": USER_AGENT},
                                 timeout=(connect_timeout, timeout), allow_redirects=False, stream=True)
        with response:
            raw = _read(response, deadline)
    except requests.Timeout:
        logger.warning("Model call timed out: %s %s", target.provider, target.model)
        raise ProviderTimeout(f"{target.label} did not answer within {_seconds(timeout)}. Try again; a shorter "
                              "question or a faster model may help.") from None
    except requests.RequestException as exc:
        logger.warning("Model call failed: %s %s (%s)", target.provider, target.model, type(exc).__name__)
        raise ProviderFailed(f"Twig could not reach {target.label}: the connection failed. Try again in a moment."
                             ) from None
    status = response.status_code
    body = _json(raw)
    if status != 200:
        logger.warning("Model call refused: %s %s HTTP %s", target.provider, target.model, status)
        raise ProviderFailed(_status_detail(target, status, wire.error_code(body)))
    try:
        answer = wire.parse(body)
    except MalformedReply as exc:
        logger.warning("Model reply unreadable: %s %s (%s)", target.provider, target.model, exc)
        raise ProviderFailed(f"{target.label} answered with a reply Twig could not read. Check the agent's model "
                             "and, for a custom endpoint, that it speaks OpenAI's chat-completions format.") from None
    return clean_text(answer)


def _read(response: requests.Response, deadline: float) -> bytes:
    """Read at most :data:`MAX_REPLY_BYTES` before ``deadline`` (a slow trickle is a timeout too)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise requests.RequestException("reply too large")
        if time.monotonic() > deadline:
            raise requests.Timeout("reply too slow")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _seconds(value: float) -> str:
    return f"{value:g} second{'s' if value != 1 else ''}"


def _status_detail(target: Target, status: int, code: str | None) -> str:
    """The sentence for a non-200 answer: what happened, and what to do about it."""
    label = target.label
    http = f"HTTP {status}, {code}" if code else f"HTTP {status}"
    if status in (401, 403):
        if target.paid_by == "org":
            return (f"{label} refused your organization's API key {target.key_masked} ({http}). Check it on "
                    f"{KEYS_PAGE}.")
        return (f"{label} refused Twig's API key ({http}). Tell your Twig operator, or set the agent to use your "
                "organization's own key.")
    if status == 404:
        return f"{label} does not know the model “{target.model}” ({http}). Check the agent's model name."
    if status == 429:
        return f"{label} is rate limiting this key, or its quota is used up ({http}). Try again later."
    if 300 <= status < 400:
        return f"{label} answered with a redirect ({http}), which Twig does not follow. Check the endpoint URL."
    if 400 <= status < 500:
        return f"{label} refused the request ({http}). Check the agent's model name and instructions."
    if status >= 500:
        return f"{label} had a problem answering ({http}). Try again in a moment."
    return f"{label} answered {http} instead of a reply."
