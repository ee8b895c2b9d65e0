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
from twig_auth.providerkeys.models import ExternalApiKey
from twig_auth.providerkeys.services import mark_used
from twig_project.workspace import answers, connections, llm
from twig_project.workspace.models import Agent, DataSource, Interaction
from twig_project.workspace.validation import model_setting_problems

AGENT_CREATED = "AGENT_CREATED"
AGENT_UPDATED = "AGENT_UPDATED"
AGENT_DELETED = "AGENT_DELETED"
AGENT_DEPLOYED = "AGENT_DEPLOYED"
DATA_SOURCE_CREATED = "DATA_SOURCE_CREATED"
DATA_SOURCE_UPDATED = "DATA_SOURCE_UPDATED"
DATA_SOURCE_DELETED = "DATA_SOURCE_DELETED"
DATA_SOURCE_SYNCED = "DATA_SOURCE_SYNCED"

AGENT_FIELDS = ("name", "description", "instructions", "config", "model_provider", "model_name", "key_source")
MODEL_PARTS = {"model_provider": "provider", "model_name": "name", "key_source": "key"}
DATA_SOURCE_FIELDS = ("name", "config")


def _actor(context: RequestContext) -> Any:
    actor = context.actor
    return actor if getattr(actor, "pk", None) else None


def _check_org(obj: Any, org: Organization) -> None:
    if obj.org_id != org.pk:
        raise InvalidInput({"agent": ["No agent with this id in your organization."]})


def _check_model_setting(agent: Agent) -> None:
    """Refuse a model setting that breaks the rules of :func:`.validation.model_setting_problems`."""
    problems = model_setting_problems(agent.model_provider, agent.model_name, agent.key_source)
    if problems:
        raise InvalidInput({f"model.{part}": messages for part, messages in problems.items()})


# --- agents -------------------------------------------------------------------------------------------


@transaction.atomic
def create_agent(*, org: Organization, name: str, description: str = "", instructions: str = "",
                 config: Mapping[str, Any] | None = None, model_provider: str = "builtin", model_name: str = "",
                 key_source: str = "platform", context: RequestContext) -> Agent:
    """Create a draft agent in ``org`` (answering from its FAQ unless a model is named)."""
    now = clock.now()
    agent = Agent(org=org, name=name, description=description, instructions=instructions, config=dict(config or {}),
                  model_provider=model_provider, model_name=model_name, key_source=key_source,
                  created_by=_actor(context), updated_by=_actor(context), created_at=now, updated_at=now)
    _check_model_setting(agent)
    agent.save(force_insert=True)
    record(AGENT_CREATED, context=context, org=org, target=agent, details={"name": agent.name})
    return agent


@transaction.atomic
def update_agent(*, agent: Agent, changes: Mapping[str, Any], context: RequestContext) -> Agent:
    """Apply ``changes`` (any of name, description, instructions, config, model_provider, model_name,
    key_source) to ``agent``."""
    unknown = sorted(set(changes) - set(AGENT_FIELDS))
    if unknown:
        raise InvalidInput({name: ["This field cannot be changed."] for name in unknown})
    agent = Agent.objects.select_for_update(of=("self",)).select_related("org").get(pk=agent.pk)
    changed = sorted(k for k, v in changes.items() if getattr(agent, k) != v)
    for key, value in changes.items():
        setattr(agent, key, value)
    _check_model_setting(agent)
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


def delete_data_source(*, source: DataSource, context: RequestContext) -> None:
    """Delete ``source``; an OAuth source is first disconnected (its tokens revoked at the provider, outside
    the transaction, and deleted)."""
    connections.disconnect(source, context=context)
    _delete_data_source(source=source, context=context)


@transaction.atomic
def _delete_data_source(*, source: DataSource, context: RequestContext) -> None:
    record(DATA_SOURCE_DELETED, context=context, org=source.org, target=source,
           details={"name": source.name, "kind": source.kind})
    source.delete()


def sync_data_source(*, source: DataSource, context: RequestContext) -> DataSource:
    """Synchronize ``source``. The reference project reads no content; an OAuth source (Google Drive, Slack)
    calls its provider's API with its access token first, outside any transaction (refreshing the token when
    needed), and fails with the connector's error (not connected, connection failed, provider unavailable)."""
    if connections.uses_oauth(source):
        connections.probe(source, context=context)
    return _mark_synced(source=source, context=context)


@transaction.atomic
def _mark_synced(*, source: DataSource, context: RequestContext) -> DataSource:
    source = DataSource.objects.select_for_update(of=("self",)).select_related("org").get(pk=source.pk)
    source.status = DataSource.Status.SYNCED
    source.last_synced_at = source.updated_at = clock.now()
    source.save(update_fields=["status", "last_synced_at", "updated_at"])
    record(DATA_SOURCE_SYNCED, context=context, org=source.org, target=source)
    return source


# --- query and chat -----------------------------------------------------------------------------------


# A model call can take many seconds: it runs outside any transaction (no row or SQLite write lock is held
# meanwhile); the interaction, and the key's "last used", are then written in one short transaction. A failed
# call records nothing and raises an llm.LLMError (the API answers it through .errors).


def ask(*, org: Organization, agent: Agent, question: str, context: RequestContext) -> Interaction:
    """Answer ``question`` with ``agent`` (its FAQ, or its model with Twig's or the org's key) and record it."""
    _check_org(agent, org)
    target = llm.route(agent, org=org)
    if target is None:
        answer = answers.answer_question(question, agent.config, agent.name)
    else:
        answer = llm.complete(target, system=agent.instructions, messages=[{"role": "user", "content": question}])
    return _record(org=org, agent=agent, kind=Interaction.Kind.QUERY, input={"question": question}, answer=answer,
                   target=target, context=context)


def chat(*, org: Organization, agent: Agent, messages: Sequence[Mapping[str, str]],
         context: RequestContext) -> Interaction:
    """Reply to a conversation with ``agent`` (the answer to its last user message) and record it."""
    _check_org(agent, org)
    if answers.last_user_message(messages) is None:
        raise InvalidInput({"messages": ['Include at least one message with role "user".']})
    stored = [{"role": m["role"], "content": m["content"]} for m in messages]
    target = llm.route(agent, org=org)
    if target is None:
        answer = answers.answer_chat(messages, agent.config, agent.name)
    else:
        answer = llm.complete(target, system=agent.instructions, messages=stored)
    return _record(org=org, agent=agent, kind=Interaction.Kind.CHAT, input={"messages": stored}, answer=answer,
                   target=target, context=context)


@transaction.atomic
def _record(*, org: Organization, agent: Agent, kind: str, input: dict[str, Any], answer: str,
            target: llm.Target | None, context: RequestContext) -> Interaction:
    """Write the interaction with who answered and who paid; mark the org's key used."""
    billing: dict[str, Any] = {}
    if target is not None:
        billing = {"provider": target.provider, "model_name": target.model, "paid_by": target.paid_by}
        if target.key_id:
            # Locked until commit, so the key cannot be deleted between this check and the insert referencing it.
            key_id = (ExternalApiKey.objects.select_for_update().filter(pk=target.key_id)
                      .values_list("pk", flat=True).first())
            if key_id is not None:
                mark_used(key_id)
            billing.update(external_key_id=key_id, key_masked=target.key_masked)
    return Interaction.objects.create(org=org, agent=agent, user=_actor(context), kind=kind, input=input,
                                      answer=answer, created_at=clock.now(), **billing)
