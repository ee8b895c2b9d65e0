"""/api/query, /api/chat and /api/interactions."""

from __future__ import annotations

import pytest

from twig_project.workspace.models import Interaction

from .helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _user_may_use_every_agent(members, grant):
    """These tests are about answers, not permissions (see test_authz_api.py): the plain user may use agents."""
    grant(members["user"], "use", "agent:*")


def test_query_answers_from_the_faq_and_records_the_interaction(api_as, org, members, make_agent):
    agent = make_agent(org, "Support")
    response = api_as("user").post("/api/query", {"agent": agent.pk, "question": "How long does a REFUND take?"})
    assert response.status_code == 200
    body = response.json()
    assert body == {"answer": "Refunds take 5 business days.", "interaction_id": body["interaction_id"]}
    interaction = Interaction.objects.get(pk=body["interaction_id"])
    assert interaction.pk.startswith("int_")
    assert (interaction.org, interaction.agent, interaction.user, interaction.kind) == (
        org, agent, members["user"].user, "query")
    assert interaction.input == {"question": "How long does a REFUND take?"}
    assert interaction.answer == "Refunds take 5 business days."


def test_query_prefers_the_longest_matching_keyword(api_as, org, members, make_agent):
    agent = make_agent(org)
    response = api_as("user").post("/api/query", {"agent": agent.pk, "question": "What is your refund policy?"})
    assert response.json()["answer"] == "See our refund policy page."


def test_query_falls_back(api_as, org, members, make_agent):
    agent = make_agent(org)
    assert api_as("user").post("/api/query", {"agent": agent.pk, "question": "Hi"}).json()["answer"] == "Ask a human."
    bare = make_agent(org, "Bare", config={})
    answer = api_as("user").post("/api/query", {"agent": bare.pk, "question": "Hi"}).json()["answer"]
    assert answer == "Bare does not have an answer to that question yet."


def test_chat_answers_the_last_user_message(api_as, org, members, make_agent):
    agent = make_agent(org)
    messages = [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "refund?"},
                {"role": "assistant", "content": "Refunds take 5 business days."},
                {"role": "user", "content": "and something else"}]
    response = api_as("user").post("/api/chat", {"agent": agent.pk, "messages": messages})
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == {"role": "assistant", "content": "Ask a human."}
    interaction = Interaction.objects.get(pk=body["interaction_id"])
    assert interaction.kind == "chat" and interaction.input == {"messages": messages}


def test_chat_needs_a_user_message(api_as, org, members, make_agent):
    agent = make_agent(org)
    response = api_as("user").post("/api/chat", {"agent": agent.pk,
                                                 "messages": [{"role": "system", "content": "x"}]})
    body = assert_error(response, 400, "invalid")
    assert list(body["errors"]) == ["messages"]
    assert Interaction.objects.count() == 0


def test_agent_of_another_org_is_an_invalid_reference(api_as, members, other_org, make_agent):
    theirs = make_agent(other_org)
    api = api_as("super_admin")
    body = assert_error(api.post("/api/query", {"agent": theirs.pk, "question": "refund?"}), 400, "invalid")
    assert list(body["errors"]) == ["agent"]
    body = assert_error(api.post("/api/chat", {"agent": theirs.pk, "messages": [{"role": "user", "content": "x"}]}),
                        400, "invalid")
    assert list(body["errors"]) == ["agent"]
    assert Interaction.objects.count() == 0


def test_users_see_their_own_interactions_and_managers_see_all(api_as, org, members, make_agent):
    agent = make_agent(org)
    mine = api_as("user").post("/api/query", {"agent": agent.pk, "question": "refund?"}).json()["interaction_id"]
    theirs = api_as("manager").post("/api/query", {"agent": agent.pk, "question": "x"}).json()["interaction_id"]
    as_user = api_as("user").get("/api/interactions")
    assert as_user.status_code == 200
    assert [i["id"] for i in as_user.json()] == [mine]
    assert as_user.json()[0]["user"] == "user@acme.test"
    assert as_user.json()[0]["input"] == {"question": "refund?"}
    as_manager = api_as("manager").get("/api/interactions").json()
    assert {i["id"] for i in as_manager} == {mine, theirs}


def test_interactions_of_other_orgs_stay_hidden(api_as, org, members, other_org, make_agent):
    from twig_auth.core.context import RequestContext
    from twig_project.workspace import services

    theirs = make_agent(other_org)
    services.ask(org=other_org, agent=theirs, question="x", context=RequestContext.system())
    assert api_as("super_admin").get("/api/interactions").json() == []


def test_interactions_filter_by_agent_kind_and_limit(api_as, org, members, make_agent):
    one, two = make_agent(org, "One"), make_agent(org, "Two")
    api = api_as("manager")
    api.post("/api/query", {"agent": one.pk, "question": "a"})
    api.post("/api/chat", {"agent": one.pk, "messages": [{"role": "user", "content": "b"}]})
    api.post("/api/query", {"agent": two.pk, "question": "c"})
    assert {i["agent"] for i in api.get("/api/interactions", {"agent": one.pk}).json()} == {one.pk}
    assert [i["kind"] for i in api.get("/api/interactions", {"kind": "chat"}).json()] == ["chat"]
    assert len(api.get("/api/interactions", {"limit": 2}).json()) == 2
    body = assert_error(api.get("/api/interactions", {"limit": "lots", "kind": "poem"}), 400, "invalid")
    assert set(body["errors"]) == {"limit", "kind"}


def test_query_and_interaction_list_use_few_queries(api_as, org, members, make_agent):
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    agent = make_agent(org)
    api = api_as("manager")
    api.get("/api/interactions")  # warm up the session
    # and the hour's RESOURCE_ACCESS event of this member and agent (3 statements; tests/audit covers it)
    api.post("/api/query", {"agent": agent.pk, "question": "warm up"})
    reset_queries()
    with CaptureQueriesContext(connection) as asking:
        assert api.post("/api/query", {"agent": agent.pk, "question": "refund?"}).status_code == 200
    # session, user, membership, agent lookup, insert (plus savepoint bookkeeping on some backends)
    assert len([q for q in asking.captured_queries if "SAVEPOINT" not in q["sql"]]) <= 6
    reset_queries()  # each request clears the log, which would confuse a second capture
    with CaptureQueriesContext(connection) as one:
        api.get("/api/interactions")
    for _ in range(4):
        api.post("/api/query", {"agent": agent.pk, "question": "x"})
    reset_queries()
    with CaptureQueriesContext(connection) as five:
        assert len(api.get("/api/interactions").json()) == 6  # with the warm-up
    assert len(five) == len(one) == 3  # user, membership, interactions (the session record is cached)
