"""The Agents page (/agents/): list, model form ("use my key"), Ask form; the API's permission rules; bad input."""

from __future__ import annotations

import html
import re

import pytest

from tests.pages.conftest import HOSTILE, field_errors, text
from tests.support.clients import signed_in
from twig_auth.audit.models import AuditEvent
from twig_project.workspace.models import Agent, Interaction

from .conftest import ORG_OPENAI_KEY

pytestmark = pytest.mark.django_db

PAGE = "/agents/"


def model_post(agent: Agent, provider: str, name: str = "", key: str = "platform") -> dict[str, str]:
    prefix = f"model-{agent.pk}"
    return {f"{prefix}-provider": provider, f"{prefix}-name": name, f"{prefix}-key": key}


def ask_post(agent: Agent, question: str) -> dict[str, str]:
    return {f"ask-{agent.pk}-question": question}


def stored(agent: Agent) -> tuple[str, str, str]:
    agent = Agent.objects.get(pk=agent.pk)
    return agent.model_provider, agent.model_name, agent.key_source


def option(html: str, select_id: str, value: str) -> str:
    """Return the <option> tag of ``value`` in the select ``select_id``."""
    select = re.search(rf'<select[^>]*id="{select_id}".*?</select>', html, re.S)
    assert select, f"no select {select_id}"
    found = re.search(rf'<option value="{value}"[^>]*>[^<]*</option>', select.group(0))
    assert found, f"no option {value}"
    return found.group(0)


def test_home_links_to_the_page_and_the_page_lists_the_agents(org, members, make_agent):
    make_agent(org, "Support")
    make_agent(org, "Sales", model_provider="openai", model_name="gpt-4o-mini")
    client = signed_in(members["manager"])
    assert 'href="/agents/"' in text(client.get("/"))
    response = client.get(PAGE)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    html = text(response)
    assert "<h1>Agents</h1>" in html
    assert ">Support</h2>" in html and ">Sales</h2>" in html
    assert "OpenAI · gpt-4o-mini" in html and "Built-in answers" in html
    # every input and select has a label
    for field_id in re.findall(r'<(?:input|select|textarea)[^>]*\sid="([^"]+)"', html):
        assert f'<label for="{field_id}">' in html, field_id


def test_key_choices_show_the_org_keys_masked_and_disable_missing_ones(org, members, make_agent, org_key):
    agent = make_agent(org)
    key = org_key(org, "openai")
    html = text(signed_in(members["admin"]).get(PAGE))
    mine = option(html, f"id_model-{agent.pk}-key", "openai")
    assert f"Use my OpenAI key ({key.masked})" in mine and "disabled" not in mine
    missing = option(html, f"id_model-{agent.pk}-key", "anthropic")
    assert "disabled" in missing and "none added yet" in missing
    assert "Acme has no key for: Anthropic, custom endpoint" in html
    assert ORG_OPENAI_KEY not in html
    assert 'href="/settings/external-api-keys/"' in html  # admins get the link


def test_a_manager_sets_use_my_openai_key(org, members, make_agent, org_key):
    agent = make_agent(org)
    org_key(org, "openai")
    client = signed_in(members["manager"])
    response = client.post(f"/agents/{agent.pk}/model/", model_post(agent, "openai", " gpt-4o-mini ", "openai"))
    assert response.status_code == 302 and response["Location"] == f"/agents/#agent-{agent.pk}"
    assert stored(agent) == ("openai", "gpt-4o-mini", "org")
    event = AuditEvent.objects.filter(event="AGENT_UPDATED").latest("timestamp")
    assert event.user_id == members["manager"].user_id
    assert event.details == {"changed": ["key_source", "model_name", "model_provider"]}
    html = text(client.get(PAGE))
    assert "Support now answers with OpenAI · gpt-4o-mini." in html
    assert "Your OpenAI key sk-…abcd" in html
    # back to built-in answers: a leftover name and key are dropped
    client.post(f"/agents/{agent.pk}/model/", model_post(agent, "builtin", "gpt-4o-mini", "openai"))
    assert stored(agent) == ("builtin", "", "platform")


@pytest.mark.parametrize(("provider", "name", "key", "field", "words"), [
    ("openai", "", "platform", "name", "Name the model"),
    ("openai", "gpt 4o", "platform", "name", "Use at most 100 letters"),
    ("openai", "gpt-4o", "anthropic", "key", "pays only for Anthropic models"),
    ("anthropic", "claude-3-opus", "anthropic", "key", "There is no Anthropic key yet"),
    ("custom", "llama3", "platform", "key", "only with your organization's key"),
    ("custom", "llama3", "custom", "key", "There is no custom endpoint key yet"),
    ("gemini", "g", "platform", "provider", "Select a valid choice"),
    ("openai", "gpt-4o", "mine", "key", "Select a valid choice"),
    ("openai", "g" * 101, "platform", "name", "at most 100 characters"),
    ("openai", HOSTILE["nul"], "platform", "name", "Null characters are not allowed"),
])
def test_bad_model_input_shows_field_errors_and_saves_nothing(org, members, make_agent, org_key, provider, name,
                                                              key, field, words):
    agent = make_agent(org)
    org_key(org, "openai")
    response = signed_in(members["manager"]).post(f"/agents/{agent.pk}/model/", model_post(agent, provider, name,
                                                                                          key))
    assert response.status_code == 200
    errors = [html.unescape(e) for e in field_errors(response, f"model-{agent.pk}-{field}")]
    assert any(words in error for error in errors), errors
    assert stored(agent) == ("builtin", "", "platform")
    assert not AuditEvent.objects.filter(event="AGENT_UPDATED").exists()


def test_changing_the_model_needs_edit_like_the_api(org, members, make_agent, grant):
    agent = make_agent(org)
    client = signed_in(members["user"])
    # the plain user cannot even view the agent: 404, as the API
    assert client.post(f"/agents/{agent.pk}/model/", model_post(agent, "openai", "gpt-4o")).status_code == 404
    grant(members["user"], "use", agent)
    html = text(client.get(PAGE))
    assert f'action="/agents/{agent.pk}/ask/"' in html and f'action="/agents/{agent.pk}/model/"' not in html
    response = client.post(f"/agents/{agent.pk}/model/", model_post(agent, "openai", "gpt-4o"))
    assert response.status_code == 403
    assert "You cannot change the model of Support" in text(response)
    assert AuditEvent.objects.filter(event="AUTHORIZATION_DENIED", details__action="edit").exists()
    assert stored(agent) == ("builtin", "", "platform")
    grant(members["user"], "edit", agent)
    assert client.post(f"/agents/{agent.pk}/model/", model_post(agent, "openai", "gpt-4o")).status_code == 302
    assert stored(agent) == ("openai", "gpt-4o", "platform")


def test_ask_shows_the_answer_and_who_paid(org, members, make_agent, org_key, llm_peer):
    key = org_key(org, "openai")
    agent = make_agent(org, "Support", model_provider="openai", model_name="gpt-4o-mini", key_source="org")
    client = signed_in(members["manager"])
    response = client.post(f"/agents/{agent.pk}/ask/", ask_post(agent, "Where is my order?"))
    assert response.status_code == 302
    interaction = Interaction.objects.get()
    assert response["Location"] == f"/agents/?answer={interaction.pk}#agent-{agent.pk}"
    assert llm_peer.requests[0].key == ORG_OPENAI_KEY
    html = text(client.get(response["Location"]))
    assert "[gpt-4o-mini] You asked: Where is my order?" in html
    assert f"Paid by: your OpenAI key {key.masked}" in html
    assert ORG_OPENAI_KEY not in html
    # someone else's interaction id shows nothing
    other = signed_in(members["admin"])
    assert "You asked: Where is my order?" not in text(other.get(response["Location"]))


def test_ask_a_builtin_agent_and_twigs_key(org, members, make_agent, llm_peer):
    faq = make_agent(org, "FAQ")
    client = signed_in(members["manager"])
    location = client.post(f"/agents/{faq.pk}/ask/", ask_post(faq, "refund?"))["Location"]
    html = text(client.get(location))
    assert "Refunds take 5 business days." in html and "Paid by: nobody (built-in answers)" in html
    model = make_agent(org, "Model", model_provider="anthropic", model_name="claude-3-5-haiku-latest")
    location = client.post(f"/agents/{model.pk}/ask/", ask_post(model, "hi"))["Location"]
    assert "Paid by: Twig" in text(client.get(location))


def test_a_provider_failure_is_shown_on_the_page_and_nothing_is_recorded(org, members, make_agent, org_key,
                                                                          llm_peer):
    org_key(org, "openai")
    agent = make_agent(org, "Support", model_provider="openai", model_name="gpt-4o-mini", key_source="org")
    llm_peer.keys.clear()
    response = signed_in(members["manager"]).post(f"/agents/{agent.pk}/ask/", ask_post(agent, "hi"))
    assert response.status_code == 200
    html = text(response)
    assert "OpenAI refused your organization&#x27;s API key sk-…abcd (HTTP 401, invalid_api_key)" in html
    assert "Incorrect API key" not in html and ORG_OPENAI_KEY[-8:] not in html
    assert Interaction.objects.count() == 0


def test_asking_draws_from_the_members_execute_bucket_shared_with_the_api(org, members, make_agent, llm_peer,
                                                                          settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "RATE_LIMITS": {"execute": "3/m"}}
    agent = make_agent(org, "Support", model_provider="openai", model_name="gpt-4o-mini")
    client = signed_in(members["manager"])
    assert client.post(f"/agents/{agent.pk}/ask/", ask_post(agent, "one")).status_code == 302
    assert client.post("/api/query", {"agent": agent.pk, "question": "two"},
                       content_type="application/json").status_code == 200
    assert client.post(f"/agents/{agent.pk}/ask/", ask_post(agent, "three")).status_code == 302
    refused = client.post(f"/agents/{agent.pk}/ask/", ask_post(agent, "four"))
    assert refused.status_code == 429
    assert refused["X-RateLimit-Limit"] == "3" and refused["X-RateLimit-Remaining"] == "0"
    assert int(refused["Retry-After"]) >= 1
    assert "You are asking too often. Try again in" in text(refused)
    assert len(llm_peer.requests) == 3 and Interaction.objects.count() == 3  # the refused ask called nobody


def test_a_missing_org_key_is_explained(org, members, make_agent, llm_peer):
    agent = make_agent(org, "Support", model_provider="openai", model_name="gpt-4o-mini", key_source="org")
    client = signed_in(members["manager"])
    assert "asking it fails until an admin adds one" in text(client.get(PAGE))
    response = client.post(f"/agents/{agent.pk}/ask/", ask_post(agent, "hi"))
    assert "Acme has no OpenAI key" in text(response)
    assert llm_peer.requests == [] and Interaction.objects.count() == 0


@pytest.mark.parametrize("question", ["", "   ", HOSTILE["nul"], "x" * 4001])
def test_bad_questions_are_refused(org, members, make_agent, question):
    agent = make_agent(org)
    response = signed_in(members["manager"]).post(f"/agents/{agent.pk}/ask/", ask_post(agent, question))
    assert response.status_code == 200
    assert field_errors(response, f"ask-{agent.pk}-question")
    assert Interaction.objects.count() == 0


def test_asking_needs_use(org, members, make_agent, grant):
    agent = make_agent(org)
    client = signed_in(members["user"])
    assert client.post(f"/agents/{agent.pk}/ask/", ask_post(agent, "refund?")).status_code == 404
    grant(members["user"], "view", agent)
    assert "You can see this agent, but not ask it" in text(client.get(PAGE))
    assert client.post(f"/agents/{agent.pk}/ask/", ask_post(agent, "refund?")).status_code == 403
    assert Interaction.objects.count() == 0


@pytest.mark.parametrize("pk", ["agt_nope", "x" * 200, "agt_%00", "../admin"])
def test_unknown_and_malformed_agents_are_404(org, members, make_agent, pk):
    client = signed_in(members["manager"])
    assert client.post(f"/agents/{pk}/ask/", {"x": "y"}).status_code == 404
    assert client.post(f"/agents/{pk}/model/", {"x": "y"}).status_code == 404


def test_other_orgs_agents_are_invisible(org, members, other_org, make_agent):
    theirs = make_agent(other_org, "Globex secret agent")
    client = signed_in(members["super_admin"])
    assert "Globex secret agent" not in text(client.get(PAGE))
    assert client.post(f"/agents/{theirs.pk}/ask/", ask_post(theirs, "hi")).status_code == 404
    assert client.post(f"/agents/{theirs.pk}/model/", model_post(theirs, "builtin")).status_code == 404


def test_without_an_org_or_session(client, make_user):
    assert client.get(PAGE).status_code == 302  # to the login page
    lonely = make_user(email="lonely@example.test")
    client.force_login(lonely, backend="twig_auth.passwords.backends.EmailBackend")
    response = client.get(PAGE)
    assert response.status_code == 403 and "not a member of any organization" in text(response)


def test_get_only_and_post_only(org, members, make_agent):
    agent = make_agent(org)
    client = signed_in(members["manager"])
    assert client.post(PAGE).status_code == 405
    assert client.get(f"/agents/{agent.pk}/ask/").status_code == 405
    assert client.get(f"/agents/{agent.pk}/model/").status_code == 405
