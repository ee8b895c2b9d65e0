"""The reference API under the decision API: list filtering, object rules, query/chat/sync/deploy, explain,
grants and policies endpoints, and query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from twig_auth.audit.models import AuditEvent
from twig_auth.authz import services as authz_services
from twig_auth.authz.models import Grant, Policy
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.orgs import services as org_services
from twig_project.workspace import services
from twig_project.workspace.models import Agent, DataSource, Interaction

from .helpers import assert_error

pytestmark = pytest.mark.django_db

SYSTEM = RequestContext.system()
UNKNOWN_AGENT = {"agent": ["No agent with this id in your organization."]}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(item["id"] for item in response.json())


def denials() -> list[dict]:
    return list(AuditEvent.objects.filter(event="AUTHORIZATION_DENIED").order_by("timestamp", "id")
                .values_list("details", flat=True))


def closed_now() -> dict:
    """A time window (UTC) that is closed today: every weekday but the current one."""
    today = clock.now().astimezone(dt.UTC).isoweekday()
    return {"allowedDays": [d for d in range(1, 8) if d != today],
            "allowedHours": {"start": 0, "end": 24, "timezone": "UTC"}}


@pytest.fixture
def agents(org, make_agent):
    return [make_agent(org, "One"), make_agent(org, "Two"), make_agent(org, "Three")]


@pytest.fixture
def group(org, members):
    support = org_services.create_group(org=org, name="Support", context=SYSTEM)
    org_services.add_to_group(group=support, membership=members["user"], context=SYSTEM)
    return support


# --- list filtering ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role, sees_all", [("super_admin", True), ("admin", True), ("manager", True),
                                            ("user", False)])
def test_roles_list_every_agent_and_source_but_a_user_nothing_ungranted(api_as, org, members, agents, make_source,
                                                                        role, sees_all):
    source = make_source(org)
    api = api_as(role)
    assert ids(api.get("/api/agents")) == (sorted(a.pk for a in agents) if sees_all else [])
    assert ids(api.get("/api/data-sources")) == ([source.pk] if sees_all else [])


def test_a_user_lists_what_was_granted_to_them_or_their_group_and_what_they_created(
        api_as, org, members, agents, grant, group, make_source):
    one, two, three = agents
    grant(members["user"], "view", one)
    grant(group, "use", two)
    mine = services.create_agent(org=org, name="Mine", context=RequestContext.system(actor=members["user"].user))
    source = make_source(org)
    grant(group, "process", source)
    api = api_as("user")
    assert ids(api.get("/api/agents")) == sorted([one.pk, two.pk, mine.pk])
    assert ids(api.get("/api/data-sources")) == [source.pk]
    assert api.get(f"/api/agents/{three.pk}").status_code == 404
    assert api.delete(f"/api/agents/{mine.pk}").status_code == 204  # the creator manages their own


def test_a_wildcard_grant_covers_every_agent_of_the_org_only(api_as, org, members, agents, grant, other_org,
                                                             make_agent):
    make_agent(other_org, "Theirs")
    grant(members["user"], "use", "agent:*")
    assert ids(api_as("user").get("/api/agents")) == sorted(a.pk for a in agents)
    later = make_agent(org, "Later")
    assert later.pk in ids(api_as("user").get("/api/agents"))


def test_an_expired_grant_gives_nothing(api_as, members, agents, grant):
    given = grant(members["user"], "view", agents[0], expires_at=clock.now() + dt.timedelta(hours=1))
    assert ids(api_as("user").get("/api/agents")) == [agents[0].pk]
    Grant.objects.filter(pk=given.pk).update(expires_at=clock.now() - dt.timedelta(seconds=1))  # time passed
    assert ids(api_as("user").get("/api/agents")) == []
    assert_error(api_as("user").get(f"/api/agents/{agents[0].pk}"), 404, "not_found")


def test_a_grant_outside_its_time_window_gives_nothing(api_as, members, agents, grant):
    with clock.frozen():
        grant(members["user"], "use", agents[0], access_control=closed_now())
        api = api_as("user")
        assert ids(api.get("/api/agents")) == []
        body = assert_error(api.post("/api/query", {"agent": agents[0].pk, "question": "refund?"}), 400, "invalid")
        assert body["errors"] == UNKNOWN_AGENT


def test_a_member_outside_their_own_window_hears_why(api_as, org, members, agents, grant):
    grant(members["user"], "use", agents[0])
    with clock.frozen():
        authz_services.set_access_control(target=members["user"], document=closed_now(), context=SYSTEM)
        api = api_as("user")
        assert ids(api.get("/api/agents")) == []
        body = assert_error(api.get(f"/api/agents/{agents[0].pk}"), 403, "permission_denied")
        assert "window" in body["detail"]
        body = assert_error(api.post("/api/query", {"agent": agents[0].pk, "question": "x"}), 403, "permission_denied")
        assert "window" in body["detail"]
    assert Interaction.objects.count() == 0


def test_browsing_the_api_writes_no_denials(api_as, members, agents, grant):
    grant(members["user"], "view", agents[0])
    api = api_as("user")
    for path in ("/api/agents", f"/api/agents/{agents[0].pk}", "/api/data-sources"):
        response = api.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert denials() == []


# --- one object -------------------------------------------------------------------------------------------


def test_an_agent_the_caller_may_not_view_is_not_found_for_every_method_and_audited(api_as, members, agents):
    agent = agents[0]
    api = api_as("user")
    url = f"/api/agents/{agent.pk}"
    for response in (api.get(url), api.patch(url, {"name": "x"}), api.put(url, {"name": "x"}), api.delete(url),
                     api.post(f"{url}/deploy")):
        body = assert_error(response, 404, "not_found")
        assert body["detail"] == api.get("/api/agents/agt_doesnotexist").json()["detail"]  # same as unknown
    assert [d["action"] for d in denials()] == ["view", "edit", "edit", "manage", "deploy"]
    assert all(d["resource"] == f"agent:{agent.pk}" and d["reason"] for d in denials())
    agent.refresh_from_db()
    assert agent.name == "One"


@pytest.mark.parametrize("held, allowed", [
    ("view", {"GET"}), ("use", {"GET"}), ("edit", {"GET", "PATCH", "PUT"}),
    ("manage", {"GET", "PATCH", "PUT", "DELETE"}),
])
def test_agent_methods_need_view_edit_and_manage(api_as, members, agents, grant, held, allowed):
    grant(members["user"], held, "agent:*")
    api = api_as("user")
    calls = {"GET": lambda a: api.get(f"/api/agents/{a.pk}"),
             "PATCH": lambda a: api.patch(f"/api/agents/{a.pk}", {"description": "changed"}),
             "PUT": lambda a: api.put(f"/api/agents/{a.pk}", {"name": "Replaced"}),
             "DELETE": lambda a: api.delete(f"/api/agents/{a.pk}")}
    for (method, call), agent in zip(calls.items(), agents * 2, strict=False):
        response = call(agent)
        if method in allowed:
            assert response.status_code in (200, 204), (method, response.content)
        else:
            body = assert_error(response, 403, "permission_denied")
            assert body["detail"] == denials()[-1]["reason"]


def test_a_manager_edits_any_agent_but_deletes_only_their_own(api_as, members, agents):
    api = api_as("manager")
    assert api.patch(f"/api/agents/{agents[0].pk}", {"description": "by a manager"}).status_code == 200
    body = assert_error(api.delete(f"/api/agents/{agents[0].pk}"), 403, "permission_denied")
    assert "manage" in body["detail"]
    created = api.post("/api/agents", {"name": "Mine"}).json()
    assert api.delete(f"/api/agents/{created['id']}").status_code == 204
    assert api_as("admin").delete(f"/api/agents/{agents[0].pk}").status_code == 204


def test_creating_needs_resources_create(api_as, members, grant):
    grant(members["user"], "manage", "agent:*")  # a grant on agents does not let a user create one
    body = assert_error(api_as("user").post("/api/agents", {"name": "x"}), 403, "permission_denied")
    assert "manager" in body["detail"] and "resources.create" in body["detail"]
    assert denials()[-1]["permission"] == "resources.create"
    assert_error(api_as("user").post("/api/data-sources", {"name": "x", "kind": "file"}), 403, "permission_denied")
    assert Agent.objects.count() == DataSource.objects.count() == 0


@pytest.mark.parametrize("held, status", [(None, 404), ("view", 403), ("edit", 403), ("process", 200)])
def test_sync_needs_process(api_as, org, members, make_source, grant, held, status):
    source = make_source(org)
    if held:
        grant(members["user"], held, source)
    response = api_as("user").post(f"/api/data-sources/{source.pk}/sync")
    assert response.status_code == status, response.content
    source.refresh_from_db()
    assert source.status == ("synced" if status == 200 else "idle")


def test_data_source_changes_need_edit(api_as, org, members, make_source, grant):
    source = make_source(org)
    grant(members["user"], "edit", source)
    api = api_as("user")
    assert api.patch(f"/api/data-sources/{source.pk}", {"name": "Renamed"}).status_code == 200
    assert api.delete(f"/api/data-sources/{source.pk}").status_code == 204


# --- query and chat need use ---------------------------------------------------------------------------


@pytest.mark.parametrize("path, body", [
    ("/api/query", {"question": "refund?"}),
    ("/api/chat", {"messages": [{"role": "user", "content": "refund?"}]}),
])
def test_query_and_chat_need_use(api_as, members, agents, grant, path, body):
    agent = agents[0]
    api = api_as("user")
    hidden = assert_error(api.post(path, {"agent": agent.pk, **body}), 400, "invalid")
    unknown = assert_error(api.post(path, {"agent": "agt_unknown", **body}), 400, "invalid")
    assert hidden == unknown and hidden["errors"] == UNKNOWN_AGENT  # hidden: the very answer of an unknown agent
    grant(members["user"], "view", agent)
    refused = assert_error(api.post(path, {"agent": agent.pk, **body}), 403, "permission_denied")
    assert refused["detail"] == denials()[-1]["reason"] and denials()[-1]["action"] == "use"
    assert Interaction.objects.count() == 0
    grant(members["user"], "use", agents[1])
    assert api.post(path, {"agent": agents[1].pk, **body}).status_code == 200


def test_a_group_grant_lets_its_members_use_the_agent(api_as, members, agents, grant, group):
    grant(group, "use", agents[0])
    response = api_as("user").post("/api/query", {"agent": agents[0].pk, "question": "refund?"})
    assert response.json()["answer"] == "Refunds take 5 business days."


def test_a_deny_policy_refuses_use_with_its_reason(api_as, org, members, agents, grant,
                                                   django_capture_on_commit_callbacks):
    grant(members["user"], "use", agents[0])
    with django_capture_on_commit_callbacks(execute=True):  # workers see policies once they are committed
        authz_services.create_policy(org=org, name="No users", context=SYSTEM, document={"policy": {
            "resource": "agent:*", "action": "use", "effect": "deny", "conditions": [{"user.role": "user"}]}})
    body = assert_error(api_as("user").post("/api/query", {"agent": agents[0].pk, "question": "x"}), 403,
                        "permission_denied")
    assert body["detail"] == denials()[-1]["reason"] and denials()[-1]["decidedBy"] == "policy"


# --- deploy: grant-only, separation of duties -------------------------------------------------------------


def test_deploy_needs_the_deploy_grant_even_for_admins(api_as, members, agents, grant):
    body = assert_error(api_as("admin").post(f"/api/agents/{agents[0].pk}/deploy"), 403, "permission_denied")
    assert "deploy" in body["detail"]
    grant(members["admin"], "deploy", agents[0])
    assert api_as("admin").post(f"/api/agents/{agents[0].pk}/deploy").json()["status"] == "deployed"


def test_the_creator_or_last_modifier_may_not_deploy(api_as, members, agents, grant, make_member, org):
    approver = make_member(org, "manager", email="approver@acme.test")
    for who in (members["manager"], approver):
        grant(who, "deploy", "agent:*")
    created = api_as("manager").post("/api/agents", {"name": "Mine"}).json()
    body = assert_error(api_as("manager").post(f"/api/agents/{created['id']}/deploy"), 403, "permission_denied")
    assert "separation of duties" in body["detail"].lower() and "created" in body["detail"]
    assert denials()[-1]["decidedBy"] == "sod"
    assert api_as(approver).patch(f"/api/agents/{agents[0].pk}", {"description": "tuned"}).status_code == 200
    body = assert_error(api_as(approver).post(f"/api/agents/{agents[0].pk}/deploy"), 403, "permission_denied")
    assert "last changed" in body["detail"]
    assert api_as("manager").post(f"/api/agents/{agents[0].pk}/deploy").status_code == 200
    assert api_as(approver).post(f"/api/agents/{created['id']}/deploy").status_code == 200


# --- interactions -----------------------------------------------------------------------------------------


def test_interactions_own_or_all_with_view_all(api_as, members, agents, grant):
    grant(members["user"], "use", agents[0])
    mine = api_as("user").post("/api/query", {"agent": agents[0].pk, "question": "x"}).json()["interaction_id"]
    theirs = api_as("admin").post("/api/query", {"agent": agents[0].pk, "question": "y"}).json()["interaction_id"]
    assert ids(api_as("user").get("/api/interactions")) == [mine]
    for role in ("manager", "admin", "super_admin"):
        assert ids(api_as(role).get("/api/interactions")) == sorted([mine, theirs])


# --- query counts -----------------------------------------------------------------------------------------


def _count(api, path: str, expected: int) -> int:
    api.get(path)  # warm up: session
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        assert len(api.get(path).json()) == expected
    return len(captured)


@pytest.mark.parametrize("how", ["one grant each", "group grant each", "wildcard", "role"])
def test_agent_list_queries_do_not_grow_with_visible_agents(api_as, org, members, make_agent, grant, group, how):
    who = "manager" if how == "role" else "user"
    api = api_as(who)

    def add(n: int) -> None:
        for i in range(n):
            agent = make_agent(org, f"Agent {Agent.objects.count()} {i}")
            if how == "one grant each":
                grant(members["user"], "view", agent)
            elif how == "group grant each":
                grant(group, "use", agent)

    if how == "wildcard":
        grant(members["user"], "view", "agent:*")
    add(1)
    one = _count(api, "/api/agents", 1)
    add(29)
    assert _count(api, "/api/agents", 30) == one
    assert one == (3 if how == "role" else 4)  # user, membership, (grants,) agents


def test_explain_and_grant_lists_use_a_fixed_number_of_queries(api_as, members, agents, grant):
    grant(members["user"], "view", agents[0])
    api = api_as("admin")
    one = _count(api, "/api/grants", 1)
    for agent in agents[1:]:
        grant(members["user"], "view", agent)
    assert _count(api, "/api/grants", 3) == one


# --- explain ----------------------------------------------------------------------------------------------


def test_explain_says_which_grant_allowed_and_why_not_otherwise(api_as, members, agents, grant, group):
    given = grant(group, "use", agents[0])
    api = api_as("admin")
    body = api.get("/api/authz/explain", {"member": "USER@acme.test", "action": "use",
                                          "resource": f"agent:{agents[0].pk}"}).json()
    assert body["allowed"] is True and body["decidedBy"] == "grant"
    assert set(body) == {"allowed", "decidedBy", "reason", "steps", "policyIds"}
    assert given.pk in body["reason"] and '"Support"' in body["reason"]
    assert [s["kind"] for s in body["steps"]][:1] == ["membership"]
    assert all(set(s) == {"kind", "outcome", "detail"} for s in body["steps"])
    denied = api.get("/api/authz/explain", {"member": str(members["user"].pk), "action": "edit",
                                            "resource": f"agent:{agents[0].pk}"}).json()
    assert denied["allowed"] is False and denied["decidedBy"] == "default"


def test_explain_at_another_time_reads_a_naive_time_in_the_org_time_zone(api_as, org, members, agents, grant):
    org_services.update_org_settings(org=org, patch={"timezone": "America/New_York"}, context=SYSTEM)
    grant(members["user"], "use", agents[0], access_control={"allowedHours": {"start": 9, "end": 17}})
    api = api_as("admin")
    query = {"member": "user@acme.test", "action": "use", "resource": f"agent:{agents[0].pk}"}
    assert api.get("/api/authz/explain", {**query, "at": "2030-01-07T10:00:00"}).json()["allowed"] is True
    late = api.get("/api/authz/explain", {**query, "at": "2030-01-07T10:00:00Z"}).json()  # 05:00 in New York
    assert late["allowed"] is False and "05:00" in late["reason"] + str(late["steps"])


@pytest.mark.parametrize("params, fields", [
    ({}, {"member", "action", "resource"}),
    ({"member": "user@acme.test", "action": "use", "resource": "agt_x"}, {"resource"}),
    ({"member": "user@acme.test", "action": "use", "resource": "robot:1"}, {"resource"}),
    ({"member": "user@acme.test", "action": "use", "resource": "agent:*"}, {"resource"}),
    ({"member": "user@acme.test", "action": "fly", "resource": "agent:{agent}"}, {"action"}),
    ({"member": "user@acme.test", "action": "use", "resource": "agent:{agent}", "at": "tuesday"}, {"at"}),
    ({"member": "user@acme.test", "action": "use", "resource": "agent:{agent}", "ip": "1.2.3"}, {"ip"}),
    ({"member": "user@acme.test", "action": "use", "resource": "agent:{agent}", "mfa": "maybe"}, {"mfa"}),
    ({"member": "a\x00b", "action": "use", "resource": "agent:{agent}"}, {"member"}),
])
def test_explain_names_each_bad_parameter(api_as, members, agents, params, fields):
    params = {k: v.format(agent=agents[0].pk) for k, v in params.items()}
    body = assert_error(api_as("admin").get("/api/authz/explain", params), 400, "invalid")
    assert set(body["errors"]) == fields


def test_explain_unknown_member_or_resource_is_not_found(api_as, members, agents, other_org, make_agent):
    api = api_as("admin")
    theirs = make_agent(other_org, "Theirs")
    for member, resource in (("nobody@acme.test", f"agent:{agents[0].pk}"), ("owner@globex.test",
                                                                              f"agent:{agents[0].pk}"),
                             ("user@acme.test", "agent:agt_unknown"), ("user@acme.test", f"agent:{theirs.pk}")):
        assert_error(api.get("/api/authz/explain", {"member": member, "action": "use", "resource": resource}),
                     404, "not_found")


def test_explain_is_for_admins(api_as, members, agents):
    params = {"member": "user@acme.test", "action": "use", "resource": f"agent:{agents[0].pk}"}
    for role in ("manager", "user"):
        body = assert_error(api_as(role).get("/api/authz/explain", params), 403, "permission_denied")
        assert "admin" in body["detail"]
    assert api_as("super_admin").get("/api/authz/explain", params).status_code == 200


# --- grants endpoints --------------------------------------------------------------------------------------


def test_admin_grants_lists_and_revokes(api_as, members, agents):
    api = api_as("admin")
    response = api.post("/api/grants", {"resource": f"agent:{agents[0].pk}", "action": "use",
                                        "user": "user@acme.test", "expires_at": "2999-01-01T00:00:00Z",
                                        "access_control": {"allowedDays": [1, 2, 3, 4, 5, 6, 7]}})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["id"].startswith("grt_") and created["resource"] == f"agent:{agents[0].pk}"
    assert (created["user"], created["group"], created["created_by"], created["live"]) == (
        "user@acme.test", None, "admin@acme.test", True)
    assert AuditEvent.objects.filter(event="PERMISSION_GRANTED", target_id=created["id"]).exists()
    assert ids(api_as("user").get("/api/agents")) == [agents[0].pk]
    assert [g["id"] for g in api.get("/api/grants").json()] == [created["id"]]
    assert api.delete(f"/api/grants/{created['id']}").status_code == 204
    assert AuditEvent.objects.filter(event="PERMISSION_REVOKED").count() == 1
    assert ids(api_as("user").get("/api/agents")) == []
    assert_error(api.delete(f"/api/grants/{created['id']}"), 404, "not_found")


def test_grant_to_a_group_by_name_and_on_every_agent(api_as, members, agents, group):
    response = api_as("admin").post("/api/grants", {"resource": "agent:*", "action": "view", "group": "Support"})
    assert response.status_code == 201 and response.json()["group_name"] == "Support"
    assert ids(api_as("user").get("/api/agents")) == sorted(a.pk for a in agents)


@pytest.mark.parametrize("payload, fields", [
    ({}, {"resource", "action"}),
    ({"resource": "agent", "action": "use", "user": "user@acme.test"}, {"resource"}),
    ({"resource": "robot:1", "action": "use", "user": "user@acme.test"}, {"resource"}),
    ({"resource": "agent:agt_unknown", "action": "use", "user": "user@acme.test"}, {"resource"}),
    ({"resource": "agent:{agent}", "action": "fly", "user": "user@acme.test"}, {"action"}),
    ({"resource": "agent:{agent}", "action": "use"}, {"user"}),
    ({"resource": "agent:{agent}", "action": "use", "user": "nobody@acme.test"}, {"user"}),
    ({"resource": "agent:{agent}", "action": "use", "group": "Nobody"}, {"group"}),
    ({"resource": "agent:{agent}", "action": "use", "user": "user@acme.test", "expires_at": "2001-01-01T00:00Z"},
     {"expires_at"}),
    ({"resource": "agent:{agent}", "action": "use", "user": "user@acme.test",
      "access_control": {"allowedHours": {"start": 9, "end": 25}}}, {"access_control.allowedHours.end"}),
])
def test_grant_validation_names_each_field(api_as, members, agents, payload, fields):
    payload = {k: v.format(agent=agents[0].pk) if isinstance(v, str) else v for k, v in payload.items()}
    body = assert_error(api_as("admin").post("/api/grants", payload), 400, "invalid")
    assert set(body["errors"]) == fields, body
    assert Grant.objects.count() == 0


def test_who_may_grant(api_as, org, members, agents, grant):
    payload = {"resource": f"agent:{agents[0].pk}", "action": "use", "user": "user@acme.test"}
    assert_error(api_as("user").get("/api/grants"), 403, "permission_denied")
    assert_error(api_as("manager").get("/api/grants"), 403, "permission_denied")
    assert_error(api_as("manager").post("/api/grants", payload), 403, "permission_denied")  # edits, not manages
    own = api_as("manager").post("/api/agents", {"name": "Mine"}).json()
    response = api_as("manager").post("/api/grants", {**payload, "resource": f"agent:{own['id']}"})
    assert response.status_code == 201  # the manager of one agent grants on it
    assert_error(api_as("user").delete(f"/api/grants/{response.json()['id']}"), 403, "permission_denied")
    duplicate = assert_error(api_as("admin").post("/api/grants", {**payload, "resource": f"agent:{own['id']}"}),
                             400, "invalid")
    assert response.json()["id"] in duplicate["detail"]


def test_grants_of_another_org_stay_hidden(api_as, members, other_org, make_agent):
    theirs = make_agent(other_org, "Theirs")
    owner = other_org.memberships.get()
    foreign = authz_services.grant_permission(org=other_org, resource_type="agent", resource_id=theirs.pk,
                                              action="use", user=owner.user, context=SYSTEM)
    api = api_as("admin")
    assert api.get("/api/grants").json() == []
    assert_error(api.delete(f"/api/grants/{foreign.pk}"), 404, "not_found")
    assert Grant.objects.filter(pk=foreign.pk).exists()


# --- policies endpoints ------------------------------------------------------------------------------------

ALLOW_MANAGERS = {"resource": "agent:*", "action": "use", "effect": "allow", "conditions": [{"user.role": "manager"}]}


def test_admin_creates_reads_replaces_and_deletes_a_policy(api_as, members):
    api = api_as("admin")
    response = api.post("/api/policies", {"name": "Managers use agents", "policy": ALLOW_MANAGERS})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["id"].startswith("pol_") and created["enabled"] is True
    assert created["policy"]["effect"] == "allow" and created["updated_by"] == "admin@acme.test"
    assert [p["id"] for p in api.get("/api/policies").json()] == [created["id"]]
    assert api.get(f"/api/policies/{created['id']}").json()["name"] == "Managers use agents"
    replaced = api.put(f"/api/policies/{created['id']}", {"name": "Renamed", "enabled": False,
                                                          "policy": {**ALLOW_MANAGERS, "effect": "deny"}})
    assert replaced.status_code == 200, replaced.content
    assert (replaced.json()["name"], replaced.json()["enabled"], replaced.json()["policy"]["effect"]) == (
        "Renamed", False, "deny")
    assert api.delete(f"/api/policies/{created['id']}").status_code == 204
    assert Policy.objects.count() == 0
    assert [e for e in AuditEvent.objects.filter(event__startswith="POLICY_").values_list("event", flat=True)
            .order_by("timestamp", "id")] == ["POLICY_CREATED", "POLICY_UPDATED", "POLICY_DELETED"]
    assert_error(api.get(f"/api/policies/{created['id']}"), 404, "not_found")


@pytest.mark.parametrize("payload, fields", [
    ({}, {"name", "policy"}),
    ({"name": "", "policy": ALLOW_MANAGERS}, {"name"}),
    ({"name": "x", "policy": {**ALLOW_MANAGERS, "effect": "maybe"}}, {"policy.effect"}),
    ({"name": "x", "enabled": "yes", "policy": {**ALLOW_MANAGERS, "conditions": [{"time.hour": {">=": 25}}]}},
     {"enabled", "policy.conditions.0"}),
])
def test_policy_validation_names_each_field_path(api_as, members, payload, fields):
    body = assert_error(api_as("admin").post("/api/policies", payload), 400, "invalid")
    assert {f.split(".time")[0] for f in body["errors"]} == fields, body
    assert Policy.objects.count() == 0


def test_policies_need_enterprise_to_change_and_admins(api_as, members, make_org, make_member):
    for role in ("manager", "user"):
        assert_error(api_as(role).get("/api/policies"), 403, "permission_denied")
    free = make_org("free-co", plan="free")
    free_admin = make_member(free, "admin", email="admin@free.test")
    api = api_as(free_admin)
    body = assert_error(api.post("/api/policies", {"name": "x", "policy": ALLOW_MANAGERS}), 403, "permission_denied")
    assert "enterprise" in body["detail"]
    assert api.get("/api/policies").json() == []
    assert Policy.objects.count() == 0


def test_a_policy_posted_through_the_api_decides_at_once(api_as, members, agents, grant,
                                                         django_capture_on_commit_callbacks):
    grant(members["user"], "use", agents[0])
    query = {"agent": agents[0].pk, "question": "refund?"}
    assert api_as("user").post("/api/query", query).status_code == 200
    deny = {**ALLOW_MANAGERS, "effect": "deny", "conditions": [{"user.email": "user@acme.test"}]}
    with django_capture_on_commit_callbacks(execute=True):
        assert api_as("admin").post("/api/policies", {"name": "Not this user", "policy": deny}).status_code == 201
    assert_error(api_as("user").post("/api/query", query), 403, "permission_denied")
    assert denials()[-1]["decidedBy"] == "policy"
