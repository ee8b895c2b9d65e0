"""/api/agents: list, create, show, replace, change, delete, deploy; org isolation and role rules."""

from __future__ import annotations

import pytest
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from twig_auth.audit.models import AuditEvent
from twig_project.workspace.models import Agent

from .helpers import assert_error

pytestmark = pytest.mark.django_db


def test_manager_creates_a_draft_agent_with_an_opaque_id(api_as, org, members):
    api = api_as("manager")
    response = api.post("/api/agents", {"name": "Support", "description": "Helps", "config": {"faq": {"a": "b"}}})
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("agt_") and len(body["id"]) == 20
    assert body["status"] == "draft"
    assert body["created_by"] == body["updated_by"] == "manager@acme.test"
    assert body["deployed_at"] is None
    agent = Agent.objects.get(pk=body["id"])
    assert agent.org == org and agent.config == {"faq": {"a": "b"}} and agent.instructions == ""
    event = AuditEvent.objects.get(event="AGENT_CREATED")
    assert event.org == org and event.target_id == agent.pk and event.email == "manager@acme.test"


def test_a_wildcard_grant_lists_only_the_members_orgs_agents(api_as, org, members, other_org, make_agent, grant):
    mine = make_agent(org, "Mine")
    make_agent(other_org, "Theirs")
    assert api_as("user").get("/api/agents").json() == []  # least privilege: nothing without a grant
    grant(members["user"], "view", "agent:*")
    response = api_as("user").get("/api/agents")
    assert response.status_code == 200
    assert [a["id"] for a in response.json()] == [mine.pk]
    assert [a["id"] for a in api_as("manager").get("/api/agents").json()] == [mine.pk]  # by role


def test_agent_of_another_org_is_not_found_for_every_method(api_as, members, other_org, make_agent):
    theirs = make_agent(other_org, "Theirs")
    api = api_as("super_admin")
    url = f"/api/agents/{theirs.pk}"
    assert_error(api.get(url), 404, "not_found")
    assert_error(api.patch(url, {"name": "Hijacked"}), 404, "not_found")
    assert_error(api.put(url, {"name": "Hijacked"}), 404, "not_found")
    assert_error(api.delete(url), 404, "not_found")
    assert_error(api.post(f"{url}/deploy"), 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.name == "Theirs" and theirs.status == "draft"


def test_unknown_agent_id_is_not_found(api_as, members):
    assert_error(api_as("user").get("/api/agents/agt_doesnotexist"), 404, "not_found")


def test_member_reads_an_agent(api_as, org, members, make_agent, grant):
    agent = make_agent(org, "Support")
    grant(members["user"], "view", agent)
    response = api_as("user").get(f"/api/agents/{agent.pk}")
    assert response.status_code == 200
    assert response.json()["name"] == "Support"
    assert response.json()["config"]["fallback"] == "Ask a human."


@pytest.mark.parametrize("method, path, data", [
    ("post", "/api/agents", {"name": "New"}),
    ("patch", "/api/agents/{id}", {"name": "Renamed"}),
    ("put", "/api/agents/{id}", {"name": "Renamed"}),
    ("delete", "/api/agents/{id}", None),
    ("post", "/api/agents/{id}/deploy", None),
])
def test_plain_user_cannot_change_agents(api_as, org, members, make_agent, grant, method, path, data):
    agent = make_agent(org, "Support")
    grant(members["user"], "use", agent)  # sees and uses it: changing it is refused, not hidden
    api = api_as("user")
    kwargs = {} if data is None else {"data": data}
    response = getattr(api, method)(path.format(id=agent.pk), **kwargs)
    body = assert_error(response, 403, "permission_denied")
    if path == "/api/agents":
        assert "manager" in body["detail"]
    else:
        denied = AuditEvent.objects.get(event="AUTHORIZATION_DENIED")
        assert denied.details["reason"] == body["detail"] and denied.details["resource"] == f"agent:{agent.pk}"
    agent.refresh_from_db()
    assert (agent.name, agent.status) == ("Support", "draft")
    assert Agent.objects.count() == 1


def test_patch_changes_only_given_fields_and_records_who(api_as, org, members, make_agent):
    agent = make_agent(org, "Support")
    response = api_as("admin").patch(f"/api/agents/{agent.pk}", {"instructions": "Be brief."})
    assert response.status_code == 200
    body = response.json()
    assert body["instructions"] == "Be brief." and body["name"] == "Support"
    assert body["config"]["faq"]["refund"] == "Refunds take 5 business days."
    assert body["updated_by"] == "admin@acme.test" and body["created_by"] is None
    event = AuditEvent.objects.get(event="AGENT_UPDATED")
    assert event.details == {"changed": ["instructions"]}


def test_put_replaces_the_whole_agent(api_as, org, members, make_agent):
    agent = make_agent(org, "Support", description="Old")
    response = api_as("manager").put(f"/api/agents/{agent.pk}", {"name": "Helper"})
    assert response.status_code == 200
    agent.refresh_from_db()
    assert (agent.name, agent.description, agent.config) == ("Helper", "", {})


def test_put_without_a_name_is_invalid(api_as, org, members, make_agent):
    agent = make_agent(org, "Support")
    body = assert_error(api_as("manager").put(f"/api/agents/{agent.pk}", {"description": "x"}), 400, "invalid")
    assert list(body["errors"]) == ["name"]


def test_status_and_id_are_read_only(api_as, org, members, make_agent):
    agent = make_agent(org, "Support")
    response = api_as("manager").patch(f"/api/agents/{agent.pk}", {"status": "deployed", "id": "agt_x"})
    assert response.status_code == 200
    agent.refresh_from_db()
    assert agent.status == "draft"
    assert Agent.objects.filter(pk="agt_x").count() == 0


def test_delete_removes_the_agent_but_keeps_its_interactions(api_as, org, members):
    api = api_as("manager")
    agent = Agent.objects.get(pk=api.post("/api/agents", {"name": "Support"}).json()["id"])  # its creator manages it
    asked = api.post("/api/query", {"agent": agent.pk, "question": "refund?"}).json()
    response = api.delete(f"/api/agents/{agent.pk}")
    assert response.status_code == 204
    assert not Agent.objects.filter(pk=agent.pk).exists()
    listed = api.get("/api/interactions").json()
    assert [(i["id"], i["agent"]) for i in listed] == [(asked["interaction_id"], None)]
    assert AuditEvent.objects.filter(event="AGENT_DELETED", target_id=agent.pk).count() == 1


def test_deploy_marks_the_agent_deployed(api_as, org, members, make_agent, grant):
    agent = make_agent(org, "Support")
    grant(members["manager"], "deploy", agent)  # deploy is granted, never held by role
    response = api_as("manager").post(f"/api/agents/{agent.pk}/deploy")
    assert response.status_code == 200
    assert response.json()["status"] == "deployed" and response.json()["deployed_at"]
    agent.refresh_from_db()
    assert agent.status == "deployed" and agent.deployed_at is not None
    assert AuditEvent.objects.filter(event="AGENT_DEPLOYED", target_id=agent.pk).count() == 1


def test_paths_accept_a_trailing_slash(api_as, org, members, make_agent, grant):
    agent = make_agent(org, "Support")
    grant(members["user"], "view", agent)
    api = api_as("user")
    assert api.get("/api/agents/").status_code == 200
    assert api.get(f"/api/agents/{agent.pk}/").json()["id"] == agent.pk


def test_agent_list_uses_a_fixed_number_of_queries(api_as, org, members, make_agent, grant):
    api = api_as("user")
    grant(members["user"], "view", "agent:*")
    make_agent(org, "One")
    api.get("/api/agents")  # warm up: session, user and membership lookups
    reset_queries()  # each request clears the log, which would confuse a second capture
    with CaptureQueriesContext(connection) as one:
        assert len(api.get("/api/agents").json()) == 1
    for n in range(5):
        make_agent(org, f"Agent {n}")
    reset_queries()
    with CaptureQueriesContext(connection) as six:
        assert len(api.get("/api/agents").json()) == 6
    assert len(six) == len(one) == 4  # user, membership, grants, agents (the session record is cached)
