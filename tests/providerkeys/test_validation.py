"""Validation of provider keys and custom endpoints: each rule, its field, and a message that never repeats the
refused value."""

from __future__ import annotations

import pytest

from tests.providerkeys.conftest import ANTHROPIC_KEY, CUSTOM_KEY, OPENAI_KEY
from twig_auth.exceptions import InvalidInput
from twig_auth.providerkeys import validation


def errors_of(**kw: object) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as info:
        validation.clean(**kw)  # type: ignore[arg-type]
    return info.value.errors


@pytest.mark.parametrize(("provider", "secret", "endpoint", "expected"), [
    ("openai", OPENAI_KEY, "", ("openai", OPENAI_KEY, "")),
    ("openai", f"  {OPENAI_KEY}\n", "", ("openai", OPENAI_KEY, "")),
    ("openai", "sk-12345", "", ("openai", "sk-12345", "")),  # 8 characters: the shortest accepted
    ("anthropic", ANTHROPIC_KEY, "", ("anthropic", ANTHROPIC_KEY, "")),
    ("anthropic", ANTHROPIC_KEY, None, ("anthropic", ANTHROPIC_KEY, "")),
    ("custom", CUSTOM_KEY, "https://llm.example.test/v1/", ("custom", CUSTOM_KEY, "https://llm.example.test/v1")),
    ("custom", CUSTOM_KEY, " HTTPS://LLM.example.test:8443/openai/v1 ",
     ("custom", CUSTOM_KEY, "https://LLM.example.test:8443/openai/v1")),
    ("custom", CUSTOM_KEY, "http://localhost:11434/v1", ("custom", CUSTOM_KEY, "http://localhost:11434/v1")),
    ("custom", CUSTOM_KEY, "http://127.0.0.1:8000", ("custom", CUSTOM_KEY, "http://127.0.0.1:8000")),
    ("custom", CUSTOM_KEY, "http://127.8.9.10/v1", ("custom", CUSTOM_KEY, "http://127.8.9.10/v1")),
    ("custom", CUSTOM_KEY, "http://[::1]:8080/v1", ("custom", CUSTOM_KEY, "http://[::1]:8080/v1")),
    ("custom", "sk-" + "a" * 509, "https://x.test", ("custom", "sk-" + "a" * 509, "https://x.test")),  # 512
])
def test_valid_input_is_cleaned(provider, secret, endpoint, expected):
    assert validation.clean(provider=provider, secret=secret, endpoint_url=endpoint) == expected


@pytest.mark.parametrize(("provider", "secret", "needle"), [
    ("openai", "", "Enter the API key"),
    ("openai", "   ", "Enter the API key"),
    ("openai", None, "Enter the API key"),
    ("openai", 12345678, "Enter the API key"),
    ("openai", ["sk-abcdefgh"], "Enter the API key"),
    ("openai", "sk-1234", "8 to 512"),
    ("openai", "sk-" + "a" * 510, "8 to 512"),
    ("openai", "sk-abc def-ghijkl", "no spaces"),
    ("openai", "sk-abc\tdefghijkl", "no spaces"),
    ("openai", "sk-abc\ndefghijkl", "no spaces"),
    ("openai", "sk-abcdéfghijkl", "printable ASCII"),
    ("openai", "sk-abc\x00defghijkl", "printable ASCII"),
    ("openai", "sk-abc\x7fdefghijkl", "printable ASCII"),
    ("openai", "pk-abcdefghijkl", "start with “sk-”"),
    ("openai", ANTHROPIC_KEY, "looks like an Anthropic key"),
    ("anthropic", OPENAI_KEY, "start with “sk-ant-”"),
    ("anthropic", "sk-an-abcdefghijk", "start with “sk-ant-”"),
])
def test_bad_secrets_name_the_secret_field_without_echoing_it(provider, secret, needle):
    errors = errors_of(provider=provider, secret=secret, endpoint_url="")
    assert list(errors) == ["secret"]
    [message] = errors["secret"]
    assert needle in message
    if isinstance(secret, str) and len(secret.strip()) >= 8:
        assert secret.strip() not in message


def test_the_custom_provider_accepts_any_printable_key():
    assert validation.clean(provider="custom", secret="Bearer-less_k3y.with:punct!",
                            endpoint_url="https://x.test")[1] == "Bearer-less_k3y.with:punct!"


@pytest.mark.parametrize(("endpoint", "needle"), [
    ("", "Enter the endpoint"),
    (None, "Enter the endpoint"),
    (42, "Enter the endpoint"),
    ("llm.example.test/v1", "valid URL"),
    ("ftp://llm.example.test/v1", "valid URL"),
    ("https://", "valid URL"),
    ("https://:443/v1", "valid URL"),
    ("https://llm.example.test:99999/v1", "valid URL"),
    ("https://llm.example.test:0/v1", "valid URL"),
    ("https://llm.example.test:abc/v1", "valid URL"),
    ("http://llm.example.test/v1", "Use https"),
    ("http://10.0.0.5/v1", "Use https"),
    ("http://localhost.evil.test/v1", "Use https"),
    ("http://128.0.0.1/v1", "Use https"),
    ("https://user:pass@llm.example.test/v1", "user name and password"),
    ("https://token@llm.example.test/v1", "user name and password"),
    ("https://llm.example.test/v1?api-version=2024", "query string"),
    ("https://llm.example.test/v1?", "query string"),
    ("https://llm.example.test/v1#frag", "fragment"),
    ("https://llm.example.test/v 1", "without spaces"),
    ("https://llm.exämple.test/v1", "non-ASCII"),
    ("https://llm.example.test/\x00", "without spaces"),
    ("https://llm.example.test/" + "a" * 480, "at most 500"),
])
def test_bad_endpoints_name_the_endpoint_field(endpoint, needle):
    errors = errors_of(provider="custom", secret=CUSTOM_KEY, endpoint_url=endpoint)
    assert list(errors) == ["endpoint_url"]
    assert needle in errors["endpoint_url"][0]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_only_the_custom_provider_takes_an_endpoint(provider):
    errors = errors_of(provider=provider, secret=OPENAI_KEY if provider == "openai" else ANTHROPIC_KEY,
                       endpoint_url="https://llm.example.test/v1")
    assert list(errors) == ["endpoint_url"] and "Only the Custom provider" in errors["endpoint_url"][0]


@pytest.mark.parametrize("provider", ["", "OpenAI", "builtin", None, 1, "custom ", ["openai"]])
def test_unknown_providers_are_refused_first(provider):
    errors = errors_of(provider=provider, secret="", endpoint_url="")
    assert list(errors) == ["provider"]
    assert errors["provider"] == ["Choose one of OpenAI, Anthropic, Custom (OpenAI-compatible)."]


def test_every_bad_field_is_reported_at_once():
    errors = errors_of(provider="custom", secret="short", endpoint_url="http://llm.example.test")
    assert set(errors) == {"secret", "endpoint_url"}
