"""/api/query and /api/chat with a model: Twig's key or the org's own ("use my key"), against a local server speaking
OpenAI's chat-completions and Anthropic's messages formats (tests/peers/llm_server.py)."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from django.db import connection

from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.providerkeys.models import ExternalApiKey
from twig_auth.providerkeys.services import delete_external_key
from twig_project.workspace import services
from twig_project.workspace.models import Interaction

from .conftest import (
    ORG_ANTHROPIC_KEY,
    ORG_CUSTOM_KEY,
    ORG_OPENAI_KEY,
    PLATFORM_ANTHROPIC_KEY,
    PLATFORM_OPENAI_KEY,
)
from .helpers import assert_error

pytestmark = pytest.mark.django_db

ALL_KEYS = (ORG_OPENAI_KEY, ORG_ANTHROPIC_KEY, ORG_CUSTOM_KEY, PLATFORM_OPENAI_KEY, PLATFORM_ANTHROPIC_KEY)
INSTRUCTIONS = "You are Acme's support agent. Be brief."


@pytest.fixture(autouse=True)
def _user_may_use_every_agent(members, grant):
    grant(members["user"], "use", "agent:*")


@pytest.fixture
def model_agent(org, make_agent):
    """``model_agent(provider, name, key)``: an Acme agent with instructions and that model setting."""

    def make(provider: str = "openai", name: str = "gpt-4o-mini", key: str = "org"):
        return make_agent(org, f"{provider} agent", instructions=INSTRUCTIONS, model_provider=provider,
                          model_name=name, key_source=key)

    return make


def ask(api, agent, question="What is your refund policy?"):
    return api.post("/api/query", {"agent": agent.pk, "question": question})


def assert_nothing_recorded(*keys: ExternalApiKey) -> None:
    assert Interaction.objects.count() == 0
    for key in keys:
        assert ExternalApiKey.objects.get(pk=key.pk).last_used_at is None


def assert_no_secret_in(text: str) -> None:
    for secret in ALL_KEYS:
        assert secret not in text
        assert secret[-8:] not in text  # not even the part a provider echoes back


# --- the org's key ---------------------------------------------------------------------------------------------

def test_query_with_the_org_openai_key_sends_exactly_that_key_and_records_who_paid(api_as, org, members, llm_peer,
                                                                                   model_agent, org_key):
    key = org_key(org, "openai")
    agent = model_agent("openai", "gpt-4o-mini", "org")
    with clock.frozen(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)):
        response = ask(api_as("user"), agent)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {"answer": "[gpt-4o-mini] You asked: What is your refund policy?",
                    "interaction_id": body["interaction_id"]}

    [request] = llm_peer.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {ORG_OPENAI_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": "What is your refund policy?"}]}

    interaction = Interaction.objects.get(pk=body["interaction_id"])
    assert (interaction.provider, interaction.model_name, interaction.paid_by) == ("openai", "gpt-4o-mini", "org")
    assert interaction.external_key_id == key.pk
    assert interaction.key_masked == key.masked == "sk-…abcd"
    assert interaction.answer == body["answer"]
    assert ExternalApiKey.objects.get(pk=key.pk).last_used_at == dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_anthropic_messages_format_with_the_org_key(api_as, org, members, llm_peer, model_agent, org_key):
    key = org_key(org, "anthropic")
    agent = model_agent("anthropic", "claude-3-5-haiku-latest", "org")
    response = ask(api_as("user"), agent, "Do you ship to Norway?")
    assert response.status_code == 200, response.content
    assert response.json()["answer"] == "[claude-3-5-haiku-latest] You asked: Do you ship to Norway?"
    [request] = llm_peer.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == ORG_ANTHROPIC_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.body == {"model": "claude-3-5-haiku-latest", "max_tokens": 512, "system": INSTRUCTIONS,
                            "messages": [{"role": "user", "content": "Do you ship to Norway?"}]}
    interaction = Interaction.objects.get()
    assert (interaction.provider, interaction.paid_by, interaction.external_key_id, interaction.key_masked) == (
        "anthropic", "org", key.pk, key.masked)


def test_custom_endpoint_gets_the_openai_format_at_the_key_url(api_as, org, members, llm_peer, model_agent, org_key):
    key = org_key(org, "custom", endpoint_url=llm_peer.base_url + "/custom/v1/")
    agent = model_agent("custom", "llama3.1:8b", "org")
    response = ask(api_as("user"), agent)
    assert response.status_code == 200, response.content
    [request] = llm_peer.requests
    assert request.path == "/custom/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {ORG_CUSTOM_KEY}"
    assert request.body["model"] == "llama3.1:8b"
    interaction = Interaction.objects.get()
    assert (interaction.provider, interaction.paid_by, interaction.external_key_id) == ("custom", "org", key.pk)


def test_chat_sends_the_conversation_up_to_the_last_user_message(api_as, org, members, llm_peer, model_agent,
                                                                  org_key):
    org_key(org, "openai")
    org_key(org, "anthropic")
    messages = [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Bonjour !"}, {"role": "user", "content": "Refund?"},
                {"role": "user", "content": ""}, {"role": "assistant", "content": "(draft)"}]
    api = api_as("user")
    openai_agent = model_agent("openai", "gpt-4o", "org")
    response = api.post("/api/chat", {"agent": openai_agent.pk, "messages": messages})
    assert response.status_code == 200, response.content
    assert response.json()["message"] == {"role": "assistant", "content": "[gpt-4o] You asked: "}
    assert llm_peer.requests[0].body["messages"] == [{"role": "system", "content": INSTRUCTIONS}, *messages[:5]]

    anthropic_agent = model_agent("anthropic", "claude-3-5-sonnet-latest", "org")
    response = api.post("/api/chat", {"agent": anthropic_agent.pk, "messages": messages})
    assert response.status_code == 200, response.content
    # no "system" role in this format: system messages join the instructions; empty turns are left out
    assert llm_peer.requests[1].body["system"] == INSTRUCTIONS + "\n\nAnswer in French."
    assert llm_peer.requests[1].body["messages"] == [{"role": "user", "content": "Hi"},
                                                     {"role": "assistant", "content": "Bonjour !"},
                                                     {"role": "user", "content": "Refund?"}]
    interaction = Interaction.objects.get(pk=response.json()["interaction_id"])
    assert interaction.kind == "chat" and interaction.input == {"messages": messages}
    assert interaction.paid_by == "org"


def test_the_interaction_list_shows_who_answered_and_who_paid(api_as, org, members, llm_peer, model_agent, org_key,
                                                              make_agent):
    org_key(org, "openai")
    api = api_as("user")
    ask(api, model_agent("openai", "gpt-4o-mini", "org"))
    ask(api, model_agent("anthropic", "claude-3-5-haiku-latest", "platform"))
    ask(api, make_agent(org, "FAQ"), "refund?")
    listed = api.get("/api/interactions")
    assert listed.status_code == 200
    models = [i["model"] for i in reversed(listed.json())]
    assert models == [{"provider": "openai", "name": "gpt-4o-mini", "paid_by": "org", "key": "sk-…abcd"},
                      {"provider": "anthropic", "name": "claude-3-5-haiku-latest", "paid_by": "platform", "key": None},
                      {"provider": "builtin", "name": "", "paid_by": "builtin", "key": None}]
    assert_no_secret_in(listed.content.decode())


def test_the_key_that_paid_stays_recorded_after_it_is_deleted(api_as, org, members, llm_peer, model_agent, org_key):
    key = org_key(org, "openai")
    ask(api_as("user"), model_agent())
    delete_external_key(key=key, context=RequestContext.system())
    interaction = Interaction.objects.get()
    assert interaction.external_key_id is None and interaction.key_masked == "sk-…abcd"


def test_replacing_the_key_sends_the_new_one(api_as, org, members, llm_peer, model_agent, org_key):
    org_key(org, "openai")
    org_key(org, "openai", secret="sk-proj-acme-replacement-key-0000")
    llm_peer.keys.add("sk-proj-acme-replacement-key-0000")
    response = ask(api_as("user"), model_agent())
    assert response.status_code == 200
    assert llm_peer.requests[0].key == "sk-proj-acme-replacement-key-0000"
    assert Interaction.objects.get().key_masked == "sk-…0000"


def test_another_orgs_key_is_never_used(api_as, org, members, other_org, llm_peer, model_agent, org_key):
    org_key(other_org, "openai")
    response = ask(api_as("user"), model_agent())
    body = assert_error(response, 409, "provider_key_missing")
    assert "Acme has no OpenAI key" in body["detail"]
    assert llm_peer.requests == []


# --- Twig's key ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("provider", "model", "header", "secret"), [
    ("openai", "gpt-4o-mini", "authorization", f"Bearer {PLATFORM_OPENAI_KEY}"),
    ("anthropic", "claude-3-5-haiku-latest", "x-api-key", PLATFORM_ANTHROPIC_KEY),
])
def test_platform_key_pays_when_the_agent_uses_twigs_key(api_as, org, members, llm_peer, model_agent, org_key,
                                                         provider, model, header, secret):
    org_key(org, provider)  # present, and not used
    response = ask(api_as("user"), model_agent(provider, model, "platform"))
    assert response.status_code == 200, response.content
    assert llm_peer.requests[0].headers[header] == secret
    interaction = Interaction.objects.get()
    assert (interaction.paid_by, interaction.external_key_id, interaction.key_masked) == ("platform", None, "")
    assert ExternalApiKey.objects.get(org=org, provider=provider).last_used_at is None


def test_no_platform_key_is_503_provider_not_configured(api_as, org, members, llm_peer, model_agent, settings):
    settings.TWIG_LLM = {**settings.TWIG_LLM, "openai": {**settings.TWIG_LLM["openai"], "api_key": ""}}
    body = assert_error(ask(api_as("user"), model_agent("openai", "gpt-4o", "platform")), 503,
                        "provider_not_configured")
    assert "no OpenAI key of its own" in body["detail"]
    assert llm_peer.requests == [] and Interaction.objects.count() == 0


def test_builtin_agents_never_call_a_provider(api_as, org, members, llm_peer, make_agent, org_key):
    org_key(org, "openai")
    response = ask(api_as("user"), make_agent(org), "refund?")
    assert response.json()["answer"] == "Refunds take 5 business days."
    assert llm_peer.requests == []
    assert Interaction.objects.get().paid_by == "builtin"


# --- failures: clear errors, nothing recorded, no secret ---------------------------------------------------------

def test_org_without_a_key_is_409_provider_key_missing(api_as, org, members, llm_peer, model_agent):
    for provider, name, words in (("openai", "gpt-4o", "OpenAI key"), ("anthropic", "claude-3-opus", "Anthropic key"),
                                  ("custom", "llama3", "custom endpoint key")):
        body = assert_error(ask(api_as("user"), model_agent(provider, name, "org")), 409, "provider_key_missing")
        assert f"Acme has no {words}" in body["detail"] and "Settings → External API keys" in body["detail"]
    assert llm_peer.requests == [] and Interaction.objects.count() == 0


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-4o"), ("anthropic", "claude-3-opus")])
def test_a_refused_key_is_502_and_the_provider_echo_never_reaches_the_caller(api_as, org, members, llm_peer,
                                                                             model_agent, org_key, caplog,
                                                                             provider, model):
    key = org_key(org, provider)
    llm_peer.keys.clear()  # the provider no longer knows the key
    caplog.set_level(logging.DEBUG)
    response = ask(api_as("user"), model_agent(provider, model))
    body = assert_error(response, 502, "provider_error")
    label = {"openai": "OpenAI", "anthropic": "Anthropic"}[provider]
    code = {"openai": "invalid_api_key", "anthropic": "authentication_error"}[provider]
    assert body == {"detail": f"{label} refused your organization's API key {key.masked} (HTTP 401, {code}). "
                              "Check it on Settings → External API keys.", "code": "provider_error"}
    assert "Incorrect API key" not in response.content.decode()  # the provider's own words stay out
    assert_no_secret_in(response.content.decode())
    assert_no_secret_in(caplog.text)
    assert_nothing_recorded(key)


@pytest.mark.parametrize(("mode", "status", "code", "words"), [
    ("500", 502, "provider_error", "had a problem answering (HTTP 500, server_error)"),
    ("429", 502, "provider_error", "is rate limiting this key, or its quota is used up (HTTP 429, insufficient_quota)"),
    ("malformed", 502, "provider_error", "answered with a reply Twig could not read"),
    ("not_json", 502, "provider_error", "answered with a reply Twig could not read"),
    ("redirect", 502, "provider_error", "answered with a redirect (HTTP 307), which Twig does not follow"),
])
def test_provider_failures_are_clear_errors_and_record_nothing(api_as, org, members, llm_peer, model_agent, org_key,
                                                               mode, status, code, words):
    key = org_key(org, "openai")
    llm_peer.mode = mode
    body = assert_error(ask(api_as("user"), model_agent()), status, code)
    assert words in body["detail"] and body["detail"].startswith("OpenAI ")
    assert len(llm_peer.requests) == 1  # a redirect is not followed: the key went to one place only
    assert_nothing_recorded(key)


def test_anthropic_overload_and_rate_limit_codes(api_as, org, members, llm_peer, model_agent, org_key):
    org_key(org, "anthropic")
    llm_peer.mode = "429"
    body = assert_error(ask(api_as("user"), model_agent("anthropic", "claude-3-opus")), 502, "provider_error")
    assert "(HTTP 429, rate_limit_error)" in body["detail"]
    llm_peer.mode = "500"
    body = assert_error(ask(api_as("user"), model_agent("anthropic", "claude-3-opus")), 502, "provider_error")
    assert "(HTTP 500, api_error)" in body["detail"]


def test_a_slow_provider_is_504_provider_timeout(api_as, org, members, llm_peer, model_agent, org_key, settings):
    key = org_key(org, "openai")
    settings.TWIG_LLM = {**settings.TWIG_LLM, "timeout": 0.3}
    llm_peer.mode = "slow"
    body = assert_error(ask(api_as("user"), model_agent()), 504, "provider_timeout")
    assert body["detail"] == ("OpenAI did not answer within 0.3 seconds. Try again; a shorter question or a faster "
                              "model may help.")
    assert_nothing_recorded(key)
    llm_peer.released.set()


def test_an_unreachable_provider_is_502(api_as, org, members, model_agent, org_key, settings):
    from tests.sso.oidc_peer import free_port

    key = org_key(org, "openai")
    settings.TWIG_LLM = {"openai": {"base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key": ""},
                         "connect_timeout": 1, "timeout": 1}
    body = assert_error(ask(api_as("user"), model_agent()), 502, "provider_error")
    assert body["detail"] == "Twig could not reach OpenAI: the connection failed. Try again in a moment."
    assert_nothing_recorded(key)


def test_an_unknown_model_says_so(api_as, org, members, llm_peer, model_agent, org_key):
    org_key(org, "openai")
    body = assert_error(ask(api_as("user"), model_agent("openai", "missing-model")), 502, "provider_error")
    assert body["detail"] == ("OpenAI does not know the model “missing-model” (HTTP 404, model_not_found). "
                              "Check the agent's model name.")
    assert Interaction.objects.count() == 0


def test_a_reply_with_characters_the_database_cannot_store_is_cleaned(api_as, org, members, llm_peer, model_agent,
                                                                      org_key):
    org_key(org, "openai")
    llm_peer.mode = "nul"
    response = ask(api_as("user"), model_agent())
    assert response.status_code == 200, response.content
    assert response.json()["answer"] == "Here is text"
    assert Interaction.objects.get().answer == "Here is text"


def test_an_undecryptable_key_is_409_and_the_operator_is_told(api_as, org, members, llm_peer, model_agent, org_key,
                                                              other_org, caplog):
    """A ciphertext moved from another row (or encrypted under a vault key no longer configured) is unreadable."""
    key = org_key(org, "openai")
    theirs = org_key(other_org, "openai")
    raw = ExternalApiKey._meta.get_field("secret").column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {raw} FROM twig_external_api_keys WHERE id = %s", [theirs.pk])  # noqa: S608
        [token] = cursor.fetchone()
        cursor.execute(f"UPDATE twig_external_api_keys SET {raw} = %s WHERE id = %s", [token, key.pk])  # noqa: S608
    body = assert_error(ask(api_as("user"), model_agent()), 409, "provider_key_missing")
    assert body["detail"] == "Acme's OpenAI key can no longer be read. An admin can add it again on Settings → " \
                             "External API keys."
    assert "cannot be decrypted" in caplog.text
    assert llm_peer.requests == []


# --- the call happens outside the transaction; nothing leaks -------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_provider_is_called_outside_any_transaction(org, owner, make_agent, llm_peer, org_key):
    from django.db import connections

    org_key(org, "openai")
    agent = make_agent(org, "Model", model_provider="openai", model_name="gpt-4o", key_source="org")
    caller = connections["default"]  # this thread's connection, seen from the peer's thread
    seen: list[bool] = []
    llm_peer.on_request = lambda request: seen.append(caller.in_atomic_block)
    interaction = services.ask(org=org, agent=agent, question="hi", context=RequestContext.system(owner.user))
    assert seen == [False]
    assert interaction.paid_by == "org" and not caller.in_atomic_block


def test_no_secret_in_audit_events_or_interactions_after_a_full_flow(api_as, org, members, llm_peer, model_agent,
                                                                      org_key, caplog):
    caplog.set_level(logging.DEBUG)
    org_key(org, "openai")
    api = api_as("manager")
    agent = model_agent("openai", "gpt-4o", "platform")
    api.patch(f"/api/agents/{agent.pk}", {"model": {"provider": "openai", "name": "gpt-4o", "key": "org"}})
    ask(api, agent)
    llm_peer.keys.clear()
    ask(api, agent)
    dumped = json.dumps([list(AuditEvent.objects.values()), list(Interaction.objects.values())], default=str)
    assert_no_secret_in(dumped)
    assert_no_secret_in(caplog.text)


def test_asking_with_the_org_key_uses_few_queries(api_as, org, members, llm_peer, model_agent, org_key):
    from django.db import reset_queries
    from django.test.utils import CaptureQueriesContext

    org_key(org, "openai")
    agent = model_agent()
    api = api_as("manager")
    api.get("/api/interactions")  # warm up the session
    assert ask(api, agent).status_code == 200  # and the hour's RESOURCE_ACCESS event (tests/audit covers it)
    reset_queries()
    with CaptureQueriesContext(connection) as asking:
        assert ask(api, agent).status_code == 200
    # session, user, membership, agent lookup, the key (one row, decrypted in memory), then in the transaction:
    # the key row locked, last_used_at, the insert
    statements = [q["sql"] for q in asking.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= 9, statements
    assert sum("twig_external_api_keys" in sql for sql in statements) == 3
