"""Malformed, oversized, wrong-type and hostile input: always a 4xx in the contract's shape, never a 500."""

from __future__ import annotations

import pytest

from twig_project.workspace.models import Agent, DataSource, Interaction

from .helpers import assert_error

pytestmark = pytest.mark.django_db

NUL = "a\x00b"


@pytest.fixture
def agent(org, members, make_agent, grant):
    agent = make_agent(org, "Support")
    grant(members["user"], "use", agent)  # the plain user below may ask it
    return agent


@pytest.fixture
def manager(api_as, members):
    return api_as("manager")


def _nothing_written(before: int = 0) -> None:
    assert Agent.objects.exclude(name="Support").count() == 0
    assert DataSource.objects.count() == 0
    assert Interaction.objects.count() == before


@pytest.mark.parametrize("path, required", [
    ("/api/agents", {"name"}),
    ("/api/data-sources", {"name", "kind"}),
    ("/api/query", {"agent", "question"}),
    ("/api/chat", {"agent", "messages"}),
])
def test_empty_body_names_every_required_field(manager, path, required):
    body = assert_error(manager.post(path), 400, "invalid")
    assert set(body["errors"]) == required
    for field in required:
        assert field in body["detail"]
    _nothing_written()


@pytest.mark.parametrize("raw", ["{", "nope", '{"name": NaN}', "[" * 50_000, '{"a":' * 50_000, "\xff\xfe"])
def test_body_that_is_not_json_is_invalid(manager, raw):
    body = assert_error(manager.post("/api/agents", raw=raw), 400, "invalid")
    assert body["errors"]["non_field_errors"]
    _nothing_written()


def test_body_that_is_a_list_is_invalid(manager):
    body = assert_error(manager.post("/api/agents", ["name", "x"]), 400, "invalid")
    assert "non_field_errors" in body["errors"]


def test_oversized_body_is_invalid(manager, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = assert_error(manager.post("/api/agents", {"name": "x", "description": "y" * 2000}), 400, "invalid")
    assert "too large" in body["detail"]
    _nothing_written()


def test_form_encoded_body_is_unsupported(manager):
    response = manager.client.post("/api/agents", {"name": "x"})
    assert_error(response, 415, "unsupported_media_type")
    _nothing_written()


@pytest.mark.parametrize("question", [["refund"], {"q": "refund"}, 42, True, None, "", "   ", "x" * 4001])
def test_question_of_the_wrong_type_or_size_is_invalid(api_as, members, agent, question):
    body = assert_error(api_as("user").post("/api/query", {"agent": agent.pk, "question": question}), 400, "invalid")
    assert list(body["errors"]) == ["question"]
    _nothing_written()


def test_question_of_4000_characters_is_fine(api_as, members, agent):
    assert api_as("user").post("/api/query", {"agent": agent.pk, "question": "é" * 4000}).status_code == 200


@pytest.mark.parametrize("agent_ref", [None, 7, ["agt_x"], "agt_unknown", "", "x" * 10_000, NUL, "' OR 1=1 --"])
def test_bad_agent_reference_names_the_agent_field(api_as, members, agent_ref):
    body = assert_error(api_as("user").post("/api/query", {"agent": agent_ref, "question": "hi"}), 400, "invalid")
    assert list(body["errors"]) == ["agent"]
    _nothing_written()


@pytest.mark.parametrize("messages, field", [
    ("hello", "messages"),
    ({"role": "user", "content": "hi"}, "messages"),
    ([], "messages"),
    ([{"role": "user", "content": "hi"}] * 51, "messages"),
    (["hi"], "messages.0"),
    ([{"role": "user", "content": "ok"}, {"role": "robot", "content": "hi"}], "messages.1.role"),
    ([{"role": "user"}], "messages.0.content"),
    ([{"role": "user", "content": ["hi"]}], "messages.0.content"),
    ([{"role": "user", "content": "x" * 4001}], "messages.0.content"),
    ([{"role": "user", "content": NUL}], "messages.0.content"),
])
def test_malformed_chat_messages_name_the_bad_field(api_as, members, agent, messages, field):
    body = assert_error(api_as("user").post("/api/chat", {"agent": agent.pk, "messages": messages}), 400, "invalid")
    assert field in body["errors"], body["errors"]
    _nothing_written()


@pytest.mark.parametrize("payload, field", [
    ({"name": "x" * 201}, "name"),
    ({"name": ""}, "name"),
    ({"name": 12}, "name"),
    ({"name": NUL}, "name"),
    ({"name": "ok", "description": NUL}, "description"),
    ({"name": "ok", "description": "d" * 2001}, "description"),
    ({"name": "ok", "instructions": ["x"]}, "instructions"),
    ({"name": "ok", "config": "faq"}, "config"),
    ({"name": "ok", "config": [1, 2]}, "config"),
    ({"name": "ok", "config": {"faq": ["refund"]}}, "config"),
    ({"name": "ok", "config": {"faq": {"refund": 5}}}, "config"),
    ({"name": "ok", "config": {"fallback": {"x": 1}}}, "config"),
    ({"name": "ok", "config": {"faq": {"ref\x00und": "x"}}}, "config"),
    ({"name": "ok", "config": {"faq": {"refund": "x\x00"}}}, "config"),
    ({"name": "ok", "config": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}, "config"),
    ({"name": "ok", "config": {"big": 10**30}}, "config"),
    ({"name": "ok", "config": {"k": "v" * 20001}}, "config"),
])
def test_bad_agent_fields_are_named(manager, payload, field):
    body = assert_error(manager.post("/api/agents", payload), 400, "invalid")
    assert list(body["errors"]) == [field]
    _nothing_written()


def test_lone_surrogate_is_invalid(manager):
    body = assert_error(manager.post("/api/agents", raw='{"name": "bad \\ud800 name"}'), 400, "invalid")
    assert list(body["errors"]) == ["name"]
    body = assert_error(manager.post("/api/agents", raw='{"name": "ok", "config": {"k": "\\udfff"}}'), 400, "invalid")
    assert list(body["errors"]) == ["config"]
    _nothing_written()


def test_nul_in_data_source_fields_is_invalid(manager):
    body = assert_error(manager.post("/api/data-sources", {"name": NUL, "kind": "file", "config": {NUL: 1}}),
                        400, "invalid")
    assert set(body["errors"]) == {"name", "config"}
    _nothing_written()


def test_nul_in_org_settings_is_invalid(api_as, org, members):
    body = assert_error(api_as("admin").patch("/api/org/settings", {"timezone": "Europe/\x00Berlin",
                                                                     "ipAllowlist": ["10.0.0.0/8\x00"],
                                                                     "sso": {"allowedDomains": ["a\x00.test"]}}),
                        400, "invalid")
    assert set(body["errors"]) == {"timezone", "ipAllowlist", "sso.allowedDomains"}
    org.refresh_from_db()
    assert org.settings == {}


@pytest.mark.parametrize("path", ["/api/agents/agt_%00x", "/api/agents/%27%20OR%201%3D1", "/api/agents/" + "a" * 500,
                                  "/api/data-sources/src_%00", "/api/agents/%E2%80%AE"])
def test_hostile_ids_in_urls_are_not_found(api_as, members, path):
    response = api_as("manager").client.get(path)
    assert_error(response, 404, "not_found")


def test_hostile_query_parameters_are_invalid(api_as, members):
    body = assert_error(api_as("manager").get("/api/interactions", {"agent": NUL, "limit": "1; DROP TABLE"}),
                        400, "invalid")
    assert set(body["errors"]) == {"agent", "limit"}


def test_injection_strings_are_stored_verbatim_and_returned_as_json(manager):
    name = "<script>alert(1)</script>'; DROP TABLE workspace_agents; --"
    config = {"faq": {"<b>refund</b>": "<img src=x onerror=alert(1)>"}, "fallback": "\" OR \"1\"=\"1"}
    response = manager.post("/api/agents", {"name": name, "config": config})
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    agent = Agent.objects.get(pk=response.json()["id"])
    assert (agent.name, agent.config) == (name, config)
    listed = manager.get("/api/agents")
    assert [a["name"] for a in listed.json()] == [name]
    answer = manager.post("/api/query", {"agent": agent.pk, "question": "<B>REFUND</B>?"}).json()["answer"]
    assert answer == "<img src=x onerror=alert(1)>"


def test_unicode_is_kept_exactly(manager):
    name = "Ünïcødé 🤖 \u202e RTL \u200b zero-width"
    response = manager.post("/api/agents", {"name": name})
    assert response.status_code == 201
    assert Agent.objects.get(pk=response.json()["id"]).name == name
