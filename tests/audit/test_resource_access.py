"""RESOURCE_ACCESS: reads of the reference API's resources are audited, coalesced per actor, credential, resource
and action within a clock-aligned window, so a polling client does not flood the log."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext

from twig_auth.apikeys.services import issue_api_key
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_project.workspace.models import Interaction

pytestmark = pytest.mark.django_db
HMAC_HASHER = "twig_auth.apikeys.hashers.HmacSha256KeyHasher"
START = dt.datetime(2030, 1, 7, 10, 5, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fast_keys(settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_HASHER": HMAC_HASHER}


@pytest.fixture
def frozen() -> Any:
    with clock.frozen(START) as now:
        yield now


def accesses(**filters: Any) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event="RESOURCE_ACCESS", **filters).order_by("id"))


def key_client(member: Any, name: str = "poller", scopes: tuple[str, ...] = ("read", "execute")) -> tuple[Any, Client]:
    key, plaintext = issue_api_key(creator=member, name=name, scopes=list(scopes), environment="live")
    return key, Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")


def test_an_agent_read_is_recorded_once_per_window(api_as, org, members, make_agent, frozen):
    agent = make_agent(org)
    api = api_as("manager")
    for _ in range(5):
        assert api.get(f"/api/agents/{agent.pk}").status_code == 200
    [event] = accesses()
    assert event.org_id == org.pk and event.user_id == members["manager"].user_id
    assert (event.target_type, event.target_id) == ("workspace.agent", agent.pk)
    assert event.details == {"action": "view", "coalesceSeconds": 3600, "credential": "session", "method": "GET"}
    frozen.advance(minutes=54)  # 10:59: still the same hour-long window
    api.get(f"/api/agents/{agent.pk}")
    assert len(accesses()) == 1
    frozen.advance(minutes=2)  # 11:01: the next window
    api.get(f"/api/agents/{agent.pk}")
    assert len(accesses()) == 2


def test_each_credential_and_each_resource_is_its_own_record(org, members, make_agent, make_source, frozen):
    agent, other, source = make_agent(org), make_agent(org, "Other"), make_source(org)
    manager = members["manager"]
    key_a, poller_a = key_client(manager, "a")
    key_b, poller_b = key_client(manager, "b")
    for poller in (poller_a, poller_a, poller_b):
        assert poller.get(f"/api/agents/{agent.pk}").status_code == 200
    poller_a.get(f"/api/agents/{other.pk}")
    poller_a.get(f"/api/data-sources/{source.pk}")
    got = [(e.details.get("keyId"), e.target_id) for e in accesses()]
    assert got == [(key_a.pk, agent.pk), (key_b.pk, agent.pk), (key_a.pk, other.pk), (key_a.pk, source.pk)]
    assert all(e.details["credential"] == "api_key" and e.user_id == manager.user_id for e in accesses())
    assert accesses()[-1].target_type == "workspace.datasource"


def test_queries_chats_and_the_interaction_list_are_recorded(org, members, make_agent, frozen):
    agent = make_agent(org)
    _, poller = key_client(members["manager"])
    for _ in range(3):
        assert poller.post("/api/query", {"agent": agent.pk, "question": "refund?"},
                           content_type="application/json").status_code == 200
    chat = poller.post("/api/chat", {"agent": agent.pk, "messages": [{"role": "user", "content": "refund?"}]},
                       content_type="application/json")
    assert chat.status_code == 200
    poller.get("/api/interactions", {"kind": "query"})
    poller.get("/api/interactions", {"kind": "query"})
    use, listing = accesses()
    assert (use.target_id, use.details["action"], use.details["kind"]) == (agent.pk, "use", "query")
    assert use.details["interaction"] == Interaction.objects.order_by("created_at").first().pk
    assert listing.target_type == "" and listing.details["resource"] == "interactions"
    assert listing.details["filters"] == {"kind": "query"}


def test_asking_on_the_agents_page_is_recorded(org, members, make_agent, frozen):
    from tests.support.clients import signed_in

    agent = make_agent(org)
    client = signed_in(members["user"])
    from twig_auth.authz import services as authz_services
    from twig_auth.core.context import RequestContext

    authz_services.grant_permission(org=org, resource_type="agent", resource_id=agent.pk, action="use",
                                    user=members["user"].user, context=RequestContext.system())
    response = client.post(f"/agents/{agent.pk}/ask/", {f"ask-{agent.pk}-question": "refund?"})
    assert response.status_code == 302, response.content[:300]
    [event] = accesses()
    assert event.details["credential"] == "session" and event.details["page"] is True
    assert event.user_id == members["user"].user_id and event.target_id == agent.pk


def test_refused_reads_are_not_accesses(api_as, org, members, make_agent, frozen):
    agent = make_agent(org)
    api = api_as("user")  # a user sees no agent without a grant: 404, audited as AUTHORIZATION_DENIED
    assert api.get(f"/api/agents/{agent.pk}").status_code == 404
    assert api.get("/api/agents/agt_nope").status_code == 404
    assert not accesses()
    assert AuditEvent.objects.filter(event="AUTHORIZATION_DENIED").exists()


def test_a_window_of_zero_records_every_read(api_as, org, members, make_agent, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "AUDIT_ACCESS_COALESCE_SECONDS": 0}
    agent = make_agent(org)
    api = api_as("manager")
    for _ in range(3):
        api.get(f"/api/agents/{agent.pk}")
    assert len(accesses()) == 3 and "coalesceSeconds" not in accesses()[0].details


def test_a_coalesced_read_costs_no_query(api_as, org, members, make_agent, settings):
    # a window under the session's activity write; set before freezing (a settings change resets the clock seam)
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "AUDIT_ACCESS_COALESCE_SECONDS": 60}
    agent = make_agent(org)
    with clock.frozen(START) as frozen:
        api = api_as("manager")
        assert api.get(f"/api/agents/{agent.pk}").status_code == 200  # warms the session, and records
        reset_queries()
        with CaptureQueriesContext(connection) as first_again:
            api.get(f"/api/agents/{agent.pk}")
        assert not [q for q in first_again.captured_queries if re.search("twig_audit", q["sql"])]
        frozen.advance(seconds=60)
        reset_queries()
        with CaptureQueriesContext(connection) as recorded:
            api.get(f"/api/agents/{agent.pk}")
    audit_sql = [q["sql"] for q in recorded.captured_queries if "twig_audit" in q["sql"]]
    assert len(audit_sql) == 3, audit_sql  # the chain's three statements, nothing else
    others = [q["sql"] for q in recorded.captured_queries if "twig_audit" not in q["sql"]]
    assert [sql for sql in others if not sql.startswith("BEGIN")] == [q["sql"] for q in first_again.captured_queries]


def test_a_coalesced_read_costs_no_cache_round_trip_either(api_as, org, members, make_agent, frozen, monkeypatch):
    from django.core.cache import caches

    agent = make_agent(org)
    api = api_as("manager")
    cache = caches["default"]
    adds: list[str] = []
    real_add = cache.add

    def counting_add(key: str, *args: Any, **kwargs: Any) -> Any:
        if "twig:ra:" in key:
            adds.append(key)
        return real_add(key, *args, **kwargs)

    monkeypatch.setattr(cache, "add", counting_add)
    for _ in range(4):
        assert api.get(f"/api/agents/{agent.pk}").status_code == 200
    assert len(adds) == 1 and len(accesses()) == 1  # decided once; the next three reads ask nobody
    frozen.advance(hours=1)  # the next window asks the cache again, and records
    api.get(f"/api/agents/{agent.pk}")
    assert len(adds) == 2 and len(accesses()) == 2
