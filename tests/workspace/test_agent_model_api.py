"""An agent's ``model`` setting on /api/agents: read, write (POST, PUT, PATCH), the rules, the audit."""

from __future__ import annotations

import pytest

from twig_auth.audit.models import AuditEvent
from twig_project.workspace.models import Agent

from .helpers import assert_error

pytestmark = pytest.mark.django_db

BUILTIN = {"provider": "builtin", "name": "", "key": "platform"}


def stored(agent: Agent) -> tuple[str, str, str]:
    agent = Agent.objects.get(pk=agent.pk)
    return agent.model_provider, agent.model_name, agent.key_source


def test_agents_answer_from_their_faq_by_default(api_as, org, members, make_agent):
    agent = make_agent(org)
    body = api_as("manager").get(f"/api/agents/{agent.pk}").json()
    assert body["model"] == BUILTIN
    created = api_as("manager").post("/api/agents", {"name": "New"})
    assert created.status_code == 201 and created.json()["model"] == BUILTIN


def test_create_an_agent_with_a_model_and_the_org_key(api_as, org, members):
    response = api_as("manager").post("/api/agents", {
        "name": "GPT helper", "model": {"provider": "openai", "name": "gpt-4o-mini", "key": "org"}})
    assert response.status_code == 201, response.content
    assert response.json()["model"] == {"provider": "openai", "name": "gpt-4o-mini", "key": "org"}
    assert stored(Agent.objects.get(pk=response.json()["id"])) == ("openai", "gpt-4o-mini", "org")


def test_patch_changes_the_model_and_the_audit_names_the_fields(api_as, org, members, make_agent):
    agent = make_agent(org)
    response = api_as("manager").patch(f"/api/agents/{agent.pk}", {
        "model": {"provider": "anthropic", "name": " claude-3-5-haiku-latest "}})
    assert response.status_code == 200, response.content
    # key defaults to Twig's for OpenAI and Anthropic; the name is trimmed
    assert response.json()["model"] == {"provider": "anthropic", "name": "claude-3-5-haiku-latest", "key": "platform"}
    assert stored(agent) == ("anthropic", "claude-3-5-haiku-latest", "platform")
    event = AuditEvent.objects.filter(event="AGENT_UPDATED").latest("timestamp")
    assert event.details == {"changed": ["model_name", "model_provider"]}
    # a custom endpoint defaults to the org's key (the only one it can use)
    response = api_as("manager").patch(f"/api/agents/{agent.pk}", {
        "model": {"provider": "custom", "name": "llama3.1:8b-instruct"}})
    assert response.json()["model"] == {"provider": "custom", "name": "llama3.1:8b-instruct", "key": "org"}
    # back to built-in answers
    response = api_as("manager").patch(f"/api/agents/{agent.pk}", {"model": {"provider": "builtin"}})
    assert response.json()["model"] == BUILTIN
    assert stored(agent) == ("builtin", "", "platform")


def test_put_without_model_keeps_it_and_with_model_replaces_it(api_as, org, members, make_agent):
    agent = make_agent(org)
    api = api_as("manager")
    api.patch(f"/api/agents/{agent.pk}", {"model": {"provider": "openai", "name": "gpt-4o", "key": "org"}})
    response = api.put(f"/api/agents/{agent.pk}", {"name": "Renamed"})
    assert response.status_code == 200
    assert response.json()["model"] == {"provider": "openai", "name": "gpt-4o", "key": "org"}
    response = api.put(f"/api/agents/{agent.pk}", {"name": "Renamed", "model": {"provider": "builtin"}})
    assert response.json()["model"] == BUILTIN


@pytest.mark.parametrize(("model", "errors"), [
    ({"provider": "builtin", "name": "gpt-4o"}, {"model.name"}),
    ({"provider": "builtin", "key": "org"}, {"model.key"}),
    ({"provider": "openai"}, {"model.name"}),
    ({"provider": "openai", "name": ""}, {"model.name"}),
    ({"provider": "openai", "name": "   "}, {"model.name"}),
    ({"provider": "openai", "name": "gpt 4o"}, {"model.name"}),
    ({"provider": "openai", "name": "-gpt"}, {"model.name"}),
    ({"provider": "openai", "name": "g" * 101}, {"model.name"}),
    ({"provider": "openai", "name": "gpt\x00"}, {"model.name"}),
    ({"provider": "openai", "name": "<script>"}, {"model.name"}),
    ({"provider": "openai", "name": 4}, {"model.name"}),
    ({"provider": "openai", "name": "gpt-4o", "key": "mine"}, {"model.key"}),
    ({"provider": "openai", "name": "gpt-4o", "key": None}, {"model.key"}),
    ({"provider": "custom", "name": "llama3", "key": "platform"}, {"model.key"}),
    ({"provider": "gemini", "name": "gemini-pro"}, {"model.provider"}),
    ({"provider": ["openai"], "name": "gpt-4o"}, {"model.provider"}),
    ({"name": "gpt-4o"}, {"model.provider"}),
    ({"provider": "openai", "name": "gpt-4o", "temperature": 2}, {"model.temperature"}),
    ("openai", {"model"}),
    (["openai", "gpt-4o"], {"model"}),
    (None, {"model"}),
])
def test_a_bad_model_setting_is_refused_naming_the_part(api_as, org, members, make_agent, model, errors):
    agent = make_agent(org)
    api = api_as("manager")
    for response in (api.patch(f"/api/agents/{agent.pk}", {"model": model}),
                     api.put(f"/api/agents/{agent.pk}", {"name": "X", "model": model}),
                     api.post("/api/agents", {"name": "X", "model": model})):
        body = assert_error(response, 400, "invalid")
        assert set(body["errors"]) == errors, body
    assert stored(agent) == ("builtin", "", "platform")
    assert Agent.objects.count() == 1


@pytest.mark.parametrize("name", ["gpt-4o-mini", "claude-3-5-haiku-20241022", "meta-llama/Llama-3.1-8B-Instruct",
                                  "ft:gpt-4o-mini:acme::9abc", "models/gemini@001", "a", "A" * 100])
def test_model_names_of_every_vendor_are_accepted(api_as, org, members, make_agent, name):
    agent = make_agent(org)
    response = api_as("manager").patch(f"/api/agents/{agent.pk}", {"model": {"provider": "custom", "name": name}})
    assert response.status_code == 200, response.content
    assert stored(agent) == ("custom", name, "org")


def test_changing_the_model_needs_edit_on_the_agent(api_as, org, members, make_agent, grant):
    agent = make_agent(org)
    grant(members["user"], "use", agent)
    response = api_as("user").patch(f"/api/agents/{agent.pk}", {"model": {"provider": "openai", "name": "gpt-4o"}})
    assert_error(response, 403, "permission_denied")
    assert stored(agent) == ("builtin", "", "platform")
    grant(members["user"], "edit", agent)
    response = api_as("user").patch(f"/api/agents/{agent.pk}", {"model": {"provider": "openai", "name": "gpt-4o"}})
    assert response.status_code == 200


def test_the_database_refuses_an_inconsistent_setting(org, make_agent):
    from django.db import IntegrityError, transaction

    agent = make_agent(org)
    for values in ({"model_provider": "builtin", "model_name": "gpt-4o"},
                   {"model_provider": "openai", "model_name": ""},
                   {"model_provider": "custom", "model_name": "x", "key_source": "platform"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Agent.objects.filter(pk=agent.pk).update(**values)


def test_the_service_refuses_an_inconsistent_setting(org, make_agent):
    from twig_auth.core.context import RequestContext
    from twig_auth.exceptions import InvalidInput
    from twig_project.workspace import services

    agent = make_agent(org)
    with pytest.raises(InvalidInput) as caught:
        services.update_agent(agent=agent, changes={"model_provider": "openai"}, context=RequestContext.system())
    assert caught.value.errors == {"model.name": ["Name the model, e.g. gpt-4o-mini or claude-3-5-haiku-latest."]}
    with pytest.raises(InvalidInput):
        services.create_agent(org=org, name="X", model_provider="custom", model_name="m", key_source="platform",
                              context=RequestContext.system())
    assert stored(agent) == ("builtin", "", "platform") and Agent.objects.count() == 1
