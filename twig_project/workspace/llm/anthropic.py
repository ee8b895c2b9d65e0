"""Anthropic's messages wire format.

``POST {base_url}/v1/messages`` with ``x-api-key: <key>``, ``anthropic-version: 2023-06-01`` and
``{"model", "max_tokens", "system", "messages": [{"role": "user"|"assistant", "content"}]}``; the reply is the
text blocks of ``content``. Errors are ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from twig_project.workspace.llm.target import Target
from twig_project.workspace.llm.wire import MalformedReply, WireRequest, conversation, known_code

API_VERSION = "2023-06-01"


def build(target: Target, *, system: str, messages: Sequence[Mapping[str, str]], max_tokens: int) -> WireRequest:
    """Return the request asking ``target`` to answer ``messages`` under the ``system`` instructions.

    The format has no "system" role: system messages of a chat join the agent's instructions in ``system``.
    Empty messages are left out (the API refuses empty text) and consecutive messages of one role are joined.
    """
    systems = [system] if system.strip() else []
    turns: list[dict[str, str]] = []
    for message in conversation(messages):
        if message["role"] == "system":
            if message["content"].strip():
                systems.append(message["content"])
            continue
        if not message["content"].strip():
            continue
        if turns and turns[-1]["role"] == message["role"]:
            turns[-1]["content"] += "\n\n" + message["content"]
        else:
            turns.append(dict(message))
    body: dict[str, Any] = {"model": target.model, "max_tokens": max_tokens, "messages": turns}
    if systems:
        body["system"] = "\n\n".join(systems)
    return WireRequest(
        url=target.base_url.rstrip("/") + "/v1/messages",
        headers={"x-api-key": target.api_key, "anthropic-version": API_VERSION, "Content-Type": "application/json",
                 "Accept": "application/json"},
        body=body,
    )


def parse(body: Any) -> str:
    """Return the text of a message reply (its text blocks, joined); raise :class:`MalformedReply` otherwise."""
    content = body.get("content") if isinstance(body, Mapping) else None
    if not isinstance(content, list):
        raise MalformedReply("no content list")
    texts = [block["text"] for block in content
             if isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str)]
    if not texts:
        raise MalformedReply("no text block")
    return "".join(texts)


def error_code(body: Any) -> str | None:
    """Return the documented error type of an error body (``error.type``), if any."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return None
    return known_code(error.get("type"))
