"""Agents, data sources and interactions, each owned by one organization.

Primary keys are opaque strings (``agt_…``, ``src_…``, ``int_…``) so URLs reveal neither counts nor order.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from twig_auth.core import clock
from twig_auth.core.crypto import opaque_id

NAME_MAX = 200
DESCRIPTION_MAX = 2000
INSTRUCTIONS_MAX = 20000
QUESTION_MAX = 4000
MODEL_NAME_MAX = 100


def new_agent_id() -> str:
    return opaque_id("agt")


def new_data_source_id() -> str:
    return opaque_id("src")


def new_interaction_id() -> str:
    return opaque_id("int")


class OrgQuerySet(models.QuerySet):
    def of_org(self, org: models.Model | int | None) -> OrgQuerySet:
        """Return the rows of ``org``; nothing at all when there is no org."""
        if org is None:
            return self.none()
        return self.filter(org=org)


class ModelProvider(models.TextChoices):
    """Who answers an agent's questions: the built-in FAQ engine or a language model provider."""

    BUILTIN = "builtin", "Built-in answers"
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    CUSTOM = "custom", "Custom (OpenAI-compatible)"


class KeySource(models.TextChoices):
    """Whose API key pays for an agent's model calls."""

    PLATFORM = "platform", "Twig's key"
    ORG = "org", "The organization's key"


class PaidBy(models.TextChoices):
    """Who paid for one interaction."""

    BUILTIN = "builtin", "Nobody (built-in answers)"
    PLATFORM = "platform", "Twig's key"
    ORG = "org", "The organization's key"


class Agent(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        DEPLOYED = "deployed", "Deployed"

    Provider = ModelProvider
    KeySource = KeySource

    id = models.CharField(primary_key=True, max_length=32, default=new_agent_id, editable=False)
    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=NAME_MAX)
    description = models.TextField(max_length=DESCRIPTION_MAX, blank=True)
    instructions = models.TextField(max_length=INSTRUCTIONS_MAX, blank=True)
    config = models.JSONField(default=dict, blank=True,
                              help_text='Answer configuration, e.g. {"faq": {"refund": "…"}, "fallback": "…"}.')
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    # The model setting ("use my key"): builtin answers from ``config``; any other provider is called with
    # Twig's key (TWIG_LLM) or the org's ExternalApiKey of that provider. Rules: twig_project.workspace.validation.
    model_provider = models.CharField(max_length=20, choices=ModelProvider.choices, default=ModelProvider.BUILTIN)
    model_name = models.CharField(max_length=MODEL_NAME_MAX, blank=True)
    key_source = models.CharField(max_length=10, choices=KeySource.choices, default=KeySource.PLATFORM)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now)
    deployed_at = models.DateTimeField(null=True, blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        db_table = "workspace_agents"
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["org", "-created_at"], name="workspace_agent_org_time")]
        constraints = [
            # builtin: no model name, nothing to pay; a model: named; a custom endpoint: only the org's key.
            models.CheckConstraint(
                condition=(models.Q(model_provider=ModelProvider.BUILTIN, model_name="",
                                    key_source=KeySource.PLATFORM)
                           | (models.Q(model_provider__in=[ModelProvider.OPENAI, ModelProvider.ANTHROPIC])
                              & ~models.Q(model_name=""))
                           | (models.Q(model_provider=ModelProvider.CUSTOM, key_source=KeySource.ORG)
                              & ~models.Q(model_name=""))),
                name="workspace_agent_model_setting",
                violation_error_message="Built-in answers take no model name and Twig's key; other providers need a "
                                        "model name; a custom endpoint needs the organization's key."),
        ]

    def __str__(self) -> str:
        return self.name


class DataSource(models.Model):
    class Kind(models.TextChoices):
        WEBSITE = "website", "Website"
        GOOGLE_DRIVE = "google_drive", "Google Drive"
        SLACK = "slack", "Slack"
        NOTION = "notion", "Notion"
        FILE = "file", "File"

    class Status(models.TextChoices):
        IDLE = "idle", "Idle"
        SYNCING = "syncing", "Syncing"
        SYNCED = "synced", "Synced"
        FAILED = "failed", "Failed"

    id = models.CharField(primary_key=True, max_length=32, default=new_data_source_id, editable=False)
    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="data_sources")
    name = models.CharField(max_length=NAME_MAX)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IDLE)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now)

    objects = OrgQuerySet.as_manager()

    class Meta:
        db_table = "workspace_data_sources"
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["org", "-created_at"], name="workspace_source_org_time")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Interaction(models.Model):
    """One question answered by an agent, through ``/api/query`` or ``/api/chat``. Kept when the agent goes."""

    class Kind(models.TextChoices):
        QUERY = "query", "Query"
        CHAT = "chat", "Chat"

    id = models.CharField(primary_key=True, max_length=32, default=new_interaction_id, editable=False)
    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="interactions")
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="interactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    input = models.JSONField(default=dict, blank=True,
                             help_text='{"question": …} for a query, {"messages": […]} for a chat.')
    answer = models.TextField(blank=True)
    # Who answered and who paid: copied from the agent and the credential at the time of the call, so they
    # stay true when the agent's setting or the org's key changes later.
    provider = models.CharField(max_length=20, choices=ModelProvider.choices, default=ModelProvider.BUILTIN)
    model_name = models.CharField(max_length=MODEL_NAME_MAX, blank=True)
    paid_by = models.CharField(max_length=10, choices=PaidBy.choices, default=PaidBy.BUILTIN)
    external_key = models.ForeignKey("twig_auth.ExternalApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", help_text="The organization's key that paid, if any.")
    key_masked = models.CharField(max_length=32, blank=True, help_text="That key, masked (sk-…abcd).")
    created_at = models.DateTimeField(default=clock.now, editable=False)

    objects = OrgQuerySet.as_manager()

    class Meta:
        db_table = "workspace_interactions"
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["org", "-created_at"], name="workspace_inter_org_time"),
                   models.Index(fields=["org", "user", "-created_at"], name="workspace_inter_org_user")]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"
