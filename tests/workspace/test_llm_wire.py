"""The wire formats and the pieces of the model client, without a server: request bodies, reply parsing, settings,
the messages of each failure, and what never appears in them."""

from __future__ import annotations

import pytest

from twig_project.workspace.llm import anthropic, openai
from twig_project.workspace.llm.client import _status_detail
from twig_project.workspace.llm.conf import llm_settings
from twig_project.workspace.llm.target import Target
from twig_project.workspace.llm.wire import MalformedReply, clean_text, conversation, known_code

SECRET = "sk-proj-never-show-me-0000wxyz"


def target(provider: str = "openai", paid_by: str = "org", base_url: str = "https://api.example.com/v1/") -> Target:
    return Target(provider=provider, wire="anthropic" if provider == "anthropic" else "openai", base_url=base_url,
                  model="m-1", api_key=SECRET, paid_by=paid_by, key_id="xak_1" if paid_by == "org" else None,
                  key_masked="sk-…wxyz" if paid_by == "org" else "")


def test_a_target_never_shows_its_key():
    assert SECRET not in repr(target()) and SECRET not in str(target())
    request = openai.build(target(), system="", messages=[{"role": "user", "content": "x"}], max_tokens=5)
    assert SECRET not in repr(request)


def test_conversation_stops_at_the_last_user_message():
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    assert conversation(messages) == messages[:3]
    assert conversation([{"role": "assistant", "content": "x"}]) == []


def test_openai_request_and_reply():
    request = openai.build(target(), system="  ", messages=[{"role": "user", "content": "hi"}], max_tokens=9)
    assert request.url == "https://api.example.com/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.body == {"model": "m-1", "messages": [{"role": "user", "content": "hi"}]}  # blank system left out
    reply = {"choices": [{"message": {"role": "assistant", "content": "hello"}}]}
    assert openai.parse(reply) == "hello"
    assert openai.parse({"choices": [{"message": {"content": None, "refusal": "I can't help with that."}}]}) == \
        "I can't help with that."
    for bad in (None, [], {}, {"choices": []}, {"choices": [{}]}, {"choices": [{"message": "x"}]},
                {"choices": [{"message": {"content": None}}]}, {"choices": [{"message": {"content": 5}}]}):
        with pytest.raises(MalformedReply):
            openai.parse(bad)


def test_anthropic_request_and_reply():
    messages = [{"role": "assistant", "content": "Welcome!"}, {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    request = anthropic.build(target("anthropic", base_url="https://api.anthropic.com"), system="Rules.",
                              messages=messages, max_tokens=100)
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == SECRET and request.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in request.headers
    assert request.body == {"model": "m-1", "max_tokens": 100, "system": "Rules.\n\nBe terse.",
                            "messages": [{"role": "assistant", "content": "Welcome!"},
                                         {"role": "user", "content": "a\n\nb"}]}
    reply = {"content": [{"type": "text", "text": "Hel"}, {"type": "tool_use", "id": "x"},
                         {"type": "text", "text": "lo"}]}
    assert anthropic.parse(reply) == "Hello"
    for bad in (None, {}, {"content": "text"}, {"content": []}, {"content": [{"type": "image"}]}):
        with pytest.raises(MalformedReply):
            anthropic.parse(bad)


def test_only_documented_error_codes_are_repeated():
    assert openai.error_code({"error": {"code": "invalid_api_key", "type": "invalid_request_error"}}) == \
        "invalid_api_key"
    assert openai.error_code({"error": {"code": None, "type": "server_error"}}) == "server_error"
    assert openai.error_code({"error": {"code": SECRET, "type": f"bad key {SECRET}"}}) is None
    assert anthropic.error_code({"type": "error", "error": {"type": "overloaded_error"}}) == "overloaded_error"
    assert anthropic.error_code({"error": "x"}) is None and anthropic.error_code([1]) is None
    assert known_code(None, 3, "rate_limit_error") == "rate_limit_error"


@pytest.mark.parametrize(("status", "paid_by", "expected"), [
    (401, "org", "OpenAI refused your organization's API key sk-…wxyz (HTTP 401). Check it on Settings → External "
                 "API keys."),
    (403, "platform", "OpenAI refused Twig's API key (HTTP 403). Tell your Twig operator, or set the agent to use "
                      "your organization's own key."),
    (400, "org", "OpenAI refused the request (HTTP 400). Check the agent's model name and instructions."),
    (503, "org", "OpenAI had a problem answering (HTTP 503). Try again in a moment."),
    (204, "org", "OpenAI answered HTTP 204 instead of a reply."),
])
def test_status_messages(status, paid_by, expected):
    assert _status_detail(target(paid_by=paid_by), status, None) == expected


def test_a_custom_endpoint_is_named_by_its_host():
    custom = Target(provider="custom", wire="openai", base_url="https://llm.acme.example:8443/v1", model="x",
                    api_key=SECRET, paid_by="org")
    assert custom.label == "Your custom endpoint (llm.acme.example)"


def test_settings_merge_over_the_defaults(settings):
    settings.TWIG_LLM = {"openai": {"api_key": "sk-x"}, "timeout": 7}
    conf = llm_settings()
    assert conf["openai"] == {"base_url": "https://api.openai.com/v1", "api_key": "sk-x"}
    assert conf["anthropic"] == {"base_url": "https://api.anthropic.com", "api_key": ""}
    assert (conf["timeout"], conf["connect_timeout"], conf["max_tokens"]) == (7, 5, 1024)
    del settings.TWIG_LLM
    assert llm_settings()["openai"]["api_key"] == ""


def test_clean_text_drops_what_a_database_refuses():
    assert clean_text("a\x00b\ud800c\U0001f600") == "abc\U0001f600"
