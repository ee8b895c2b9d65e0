"""Deterministic answers: an agent's FAQ keywords, its fallback, or a fixed sentence. No ORM, no I/O.

The reference project has no language model; these rules make every answer predictable in tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def default_answer(agent_name: str) -> str:
    """Return the sentence an agent without a matching keyword or fallback answers."""
    return f"{agent_name} does not have an answer to that question yet."


def answer_question(question: str, config: Mapping[str, Any] | None, agent_name: str) -> str:
    """Return the answer to ``question`` under an agent's ``config``.

    The first FAQ keyword found in the question (case-insensitive; longest keywords are tried first, ties in
    alphabetical order, so the choice never depends on dict order) gives the answer; otherwise the
    ``fallback``; otherwise :func:`default_answer`.
    """
    config = config if isinstance(config, Mapping) else {}
    faq = config.get("faq")
    if isinstance(faq, Mapping):
        haystack = question.casefold()
        keywords = sorted((k for k in faq if isinstance(k, str) and k.strip()), key=lambda k: (-len(k), k))
        for keyword in keywords:
            if keyword.casefold() in haystack and isinstance(faq[keyword], str):
                return faq[keyword]
    fallback = config.get("fallback")
    if isinstance(fallback, str) and fallback.strip():
        return fallback
    return default_answer(agent_name)


def last_user_message(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """Return the content of the last ``user`` message, or None when there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


def answer_chat(messages: Sequence[Mapping[str, Any]], config: Mapping[str, Any] | None, agent_name: str) -> str:
    """Return the assistant's reply to a conversation: the answer to its last user message."""
    question = last_user_message(messages)
    return answer_question(question or "", config, agent_name)
