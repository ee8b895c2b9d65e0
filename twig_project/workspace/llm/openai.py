"""OpenAI's chat-completions wire format (also spoken by custom OpenAI-compatible endpoints).

``POST {base_url}/chat/completions`` with ``Authorization: Bearer <key>`` and
``{"model", "messages": [{"role": "system"|"user"|"assistant", "content"}]}``; the reply is
``choices[0].message.content``. Errors are ``{"error": {"message", "type", "code"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from twig_project.workspace.llm.target import Target
from twig_project.workspace.llm.wire import MalformedReply, WireRequest, conversation, known_code


def build(target: Target, *, system: str, messages: Sequence[Mapping[str, str]], max_tokens: int) -> WireRequest:
    """Return the request asking ``target`` to answer ``messages`` under the ``system`` instructions."""
    wire_messages = ([{"role": "system", "content": system}] if system.strip() else []) + conversation(messages)
    return WireRequest(
        url=target.base_url.rstrip("/") + "/chat/completions",
        headers={"Authorization": f"Bearer {target.api_key}", "Content-Type": "application/json",
                 "Accept": "application/json"},
        body={"model": target.model, "messages": wire_messages},
    )


def parse(body: Any) -> str:
    """Return the assistant's text of a chat completion; raise :class:`MalformedReply` otherwise."""
    try:
        message = body["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise MalformedReply("no choices[0].message") from None
    if not isinstance(message, Mapping):
        raise MalformedReply("message is not an object")
    content = message.get("content")
    if isinstance(content, str):
        return content
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        return refusal  # the model declined: its sentence is the answer
    raise MalformedReply("message has no text content")


def error_code(body: Any) -> str | None:
    """Return the documented error code of an error body (``error.code``, else ``error.type``), if any."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return None
    return known_code(error.get("code"), error.get("type"))
