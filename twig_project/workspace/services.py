"""Write workflows of the reference API. Each runs in one transaction and leaves an audit event.

Callers (views, the demo command) have already checked what the actor may do: the rules live in
:mod:`.permissions` (the decision API of :mod:`twig_auth.authz` through the DRF classes of
:mod:`twig_auth.contrib.rest_framework.authz`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput
from twig_auth.orgs.models import Organization
from twig_project.workspace import answers
from twig_project.workspace.models import Agent, DataSource, Interaction

AGENT_CREATED = "AGENT_CREATED"
AGENT_UPDATED = "AGENT_UPDATED"
AGENT_DELETED = "AGENT_DELETED"
AGENT_DEPLOYED = "AGENT_DEPLOYED"
DATA_SOURCE_CREATED = "DATA_SOURCE_CREATED"
DATA_SOURCE_UPDATED = "DATA_SOURCE_UPDATED"
DATA_SOURCE_DELETED = "DATA_SOURCE_DELETED"
DATA_SOURCE_SYNCED = "DATA_SOURCE_SYNCED"

AGENT_FIELDS = ("name", "description", "instructions", "config")
DATA_SOURCE_FIELDS = ("name", "config")


def _actor(context: RequestContext) -> Any:
    actor = context.actor
    return actor if getattr(actor, "pk", None) else None


def _check_org(obj: Any, org: Organization) -> None:
    if obj.org_id != org.pk:
        raise InvalidInput({"agent": ["No agent with this id in your organization."]})


# --- agents -------------------------------------------------------------------------------------------


@transaction.atomic
def create_agent(*, org: Organization, name: str, description: str = "", instructions: str = "",
                 config: Mapping[str, Any] | None = None, context: RequestContext) -> Agent:
    """Create a draft agent in ``org``."""
    now = clock.now()
    agent = Agent.objects.create(org=org, name=name, description=description, instructions=instructions,
                                 config=dict(config or {}), created_by=_actor(context), updated_by=_actor(context),
                                 created_at=now, updated_at=now)
    record(AGENT_CREATED, context=context, org=org, target=agent, details={"name": agent.name})
    return agent


@transaction.atomic
def update_agent(*, agent: Agent, changes: Mapping[str, Any], context: RequestContext) -> Agent:
    """Apply ``changes`` (any of name, description, instructions, config) to ``agent``."""
    unknown = sorted(set(changes) - set(AGENT_FIELDS))
    if unknown:
        raise InvalidInput({name: ["This field cannot be changed."] for name in unknown})
    agent = Agent.objects.select_for_update(of=("self",)).select_related("org").get(pk=agent.pk)
    changed = sorted(k for k, v in changes.items() if getattr(agent, k) != v)
    for key, value in changes.items():
        setattr(agent, key, value)
    agent.updated_by = _actor(context)
    agent.updated_at = clock.now()
    agent.save()
    record(AGENT_UPDATED, context=context, org=agent.org, target=agent, details={"changed": changed})
    return agent


@transaction.atomic
def delete_agent(*, agent: Agent, context: RequestContext) -> None:
    """Delete ``agent``; its past interactions stay, without the agent."""
    record(AGENT_DELETED, context=context, org=agent.org, target=agent, details={"name": agent.name})
    agent.delete()


@transaction.atomic
def deploy_agent(*, agent: Agent, context: RequestContext) -> Agent:
    """Mark ``agent`` deployed (again: a redeploy moves ``deployed_at``)."""
    agent = Agent.objects.select_for_update(of=("self",)).select_related("org").get(pk=agent.pk)
    previous = agent.status
    agent.status = Agent.Status.DEPLOYED
    agent.deployed_at = clock.now()
    agent.save(update_fields=["status", "deployed_at"])
    record(AGENT_DEPLOYED, context=context, org=agent.org, target=agent, details={"from": previous})
    return agent


# --- data sources -------------------------------------------------------------------------------------


@transaction.atomic
def create_data_source(*, org: Organization, name: str, kind: str, config: Mapping[str, Any] | None = None,
                       context: RequestContext) -> DataSource:
    """Connect a data source to ``org``; it starts ``idle`` until synced."""
    if kind not in DataSource.Kind.values:
        raise InvalidInput({"kind": [f"Choose one of {', '.join(DataSource.Kind.values)}."]})
    now = clock.now()
    source = DataSource.objects.create(org=org, name=name, kind=kind, config=dict(config or {}),
                                       created_by=_actor(context), created_at=now, updated_at=now)
    record(DATA_SOURCE_CREATED, context=context, org=org, target=source, details={"name": name, "kind": kind})
    return source


@transaction.atomic
def update_data_source(*, source: DataSource, changes: Mapping[str, Any], context: RequestContext) -> DataSource:
    """Apply ``changes`` (name, config) to ``source``; its kind is fixed."""
    changes = {k: v for k, v in changes.items() if not (k == "kind" and v == source.kind)}
    unknown = sorted(set(changes) - set(DATA_SOURCE_FIELDS))
    if unknown:
        raise InvalidInput({name: ["This field cannot be changed."] for name in unknown})
    source = DataSource.objects.select_for_update(of=("self",)).select_related("org").get(pk=source.pk)
    changed = sorted(k for k, v in changes.items() if getattr(source, k) != v)
    for key, value in changes.items():
        setattr(source, key, value)
    source.updated_at = clock.now()
    source.save()
    record(DATA_SOURCE_UPDATED, context=context, org=source.org, target=source, details={"changed": changed})
    return source


@transaction.atomic
def delete_data_source(*, source: DataSource, context: RequestContext) -> None:
    record(DATA_SOURCE_DELETED, context=context, org=source.org, target=source,
           details={"name": source.name, "kind": source.kind})
    source.delete()


@transaction.atomic
def sync_data_source(*, source: DataSource, context: RequestContext) -> DataSource:
    """Synchronize ``source``. The reference project has no connectors, so a sync always succeeds at once."""
    source = DataSource.objects.select_for_update(of=("self",)).select_related("org").get(pk=source.pk)
    source.status = DataSource.Status.SYNCED
    source.last_synced_at = source.updated_at = clock.now()
    source.save(update_fields=["status", "last_synced_at", "updated_at"])
    record(DATA_SOURCE_SYNCED, context=context, org=source.org, target=source)
    return source


# --- query and chat -----------------------------------------------------------------------------------


@transaction.atomic
def ask(*, org: Organization, agent: Agent, question: str, context: RequestContext) -> Interaction:
    """Answer ``question`` with ``agent`` and record the interaction."""
    _check_org(agent, org)
    answer = answers.answer_question(question, agent.config, agent.name)
    return Interaction.objects.create(org=org, agent=agent, user=_actor(context), kind=Interaction.Kind.QUERY,
                                      input={"question": question}, answer=answer, created_at=clock.now())


@transaction.atomic
def chat(*, org: Organization, agent: Agent, messages: Sequence[Mapping[str, str]],
         context: RequestContext) -> Interaction:
    """Reply to a conversation with ``agent`` (the answer to its last user message) and record it."""
    _check_org(agent, org)
    if answers.last_user_message(messages) is None:
        raise InvalidInput({"messages": ['Include at least one message with role "user".']})
    answer = answers.answer_chat(messages, agent.config, agent.name)
    stored = [{"role": m["role"], "content": m["content"]} for m in messages]
    return Interaction.objects.create(org=org, agent=agent, user=_actor(context), kind=Interaction.Kind.CHAT,
                                      input={"messages": stored}, answer=answer, created_at=clock.now())
