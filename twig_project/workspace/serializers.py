"""Input validation and output shapes of the reference API. Writes happen in :mod:`.services`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from twig_auth.contrib.rest_framework.authz import visible
from twig_project.workspace import connections
from twig_project.workspace.models import (
    DESCRIPTION_MAX,
    INSTRUCTIONS_MAX,
    NAME_MAX,
    QUESTION_MAX,
    Agent,
    DataSource,
    Interaction,
)
from twig_project.workspace.validation import (
    KEY_SOURCES,
    PROVIDERS,
    agent_config_problems,
    default_key_source,
    json_document_problem,
    model_setting_problems,
)

MAX_MESSAGES = 50
CHAT_ROLES = ("user", "assistant", "system")


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text.

    DRF's CharField already refuses NUL and surrogate characters, which PostgreSQL cannot store.
    """

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONObjectField(serializers.JSONField):
    """A JSON object whose strings are storable and whose size is bounded."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        problem = json_document_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


@extend_schema_field({"type": "string", "format": "email", "nullable": True, "readOnly": True})
class UserEmailField(serializers.Field):
    """The email of a user foreign key, read only; None once the user is gone."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str | None:
        return getattr(value, "email", None)

    def get_attribute(self, instance: Any) -> Any:
        # A missing user (deleted) is None, not an error.
        return getattr(instance, self.source, None)


# --- agents -----------------------------------------------------------------------------------------


class AgentModelSerializer(serializers.Serializer):
    """Who answers an agent's questions, and whose key pays for its model calls."""

    # Documents the shape in the schema; AgentModelField reads and writes it.

    provider = serializers.ChoiceField(choices=PROVIDERS,
                                       help_text="builtin (answers from config.faq), openai, anthropic or custom.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                 help_text='The model, e.g. "gpt-4o-mini"; empty for builtin.')
    key = serializers.ChoiceField(choices=KEY_SOURCES, required=False,
                                  help_text='Whose key pays: "platform" (Twig\'s) or "org" (your organization\'s, '
                                            'from Settings → External API keys). Default: "org" for custom, '
                                            'else "platform".')


@extend_schema_field(AgentModelSerializer)
class AgentModelField(serializers.Field):
    """An agent's model setting as one object ``{"provider", "name", "key"}``; writes the three model columns.

    The object is taken whole (``provider`` required, ``name`` and ``key`` defaulted), on PATCH too; leaving
    ``model`` out keeps the agent's setting.
    """

    # (doubled braces: DRF formats these messages)
    default_error_messages = {"invalid": 'Must be an object like {{"provider": "openai", "name": "gpt-4o-mini", '
                                         '"key": "org"}}.'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", required=False, **kwargs)

    def to_representation(self, agent: Agent) -> dict[str, str]:
        return {"provider": agent.model_provider, "name": agent.model_name, "key": agent.key_source}

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, dict):
            self.fail("invalid")
        problems: dict[str, list[str]] = {part: ["Unknown field: use provider, name and key."]
                                          for part in sorted(set(data) - {"provider", "name", "key"})}
        if "provider" not in data:
            problems["provider"] = ["This field is required."]
        provider = data.get("provider")
        name = data.get("name", "")
        key = data.get("key", default_key_source(provider) if isinstance(provider, str) else "platform")
        if isinstance(name, str):
            name = name.strip()
        for part, messages in model_setting_problems(provider, name, key).items():
            problems.setdefault(part, messages)
        if problems:
            raise serializers.ValidationError(problems)
        return {"model_provider": provider, "model_name": name, "key_source": key}


class AgentSerializer(serializers.ModelSerializer):
    """An agent as the API shows it; as input: ``name`` (required), ``description``, ``instructions``, ``config``."""

    name = StrictCharField(max_length=NAME_MAX, trim_whitespace=True)
    description = StrictCharField(max_length=DESCRIPTION_MAX, allow_blank=True, required=False, default="")
    instructions = StrictCharField(max_length=INSTRUCTIONS_MAX, allow_blank=True, required=False, default="")
    config = JSONObjectField(required=False, default=dict,
                             help_text='{"faq": {"<keyword>": "<answer>"}, "fallback": "<answer>"}')
    model = AgentModelField(help_text="Who answers: the built-in FAQ engine, or a model called with Twig's key or "
                                      "your organization's (\"use my key\").")
    created_by = UserEmailField()
    updated_by = UserEmailField()

    class Meta:
        model = Agent
        fields = ["id", "name", "description", "instructions", "config", "model", "status", "created_by",
                  "updated_by", "created_at", "updated_at", "deployed_at"]
        read_only_fields = ["id", "status", "created_at", "updated_at", "deployed_at"]

    def validate_config(self, value: dict[str, Any]) -> dict[str, Any]:
        problems = agent_config_problems(value)
        if problems:
            raise serializers.ValidationError(problems)
        return value


# --- data sources -------------------------------------------------------------------------------------


class DataSourceSerializer(serializers.ModelSerializer):
    """A data source; as input ``name`` and ``kind`` (required on creation, fixed afterwards) and ``config``."""

    name = StrictCharField(max_length=NAME_MAX)
    kind = serializers.ChoiceField(choices=DataSource.Kind.choices)
    config = JSONObjectField(required=False, default=dict)
    created_by = UserEmailField()
    connection_status = serializers.SerializerMethodField(
        help_text="OAuth kinds (google_drive, slack): not_connected, connected or connection_failed (reconnect); "
                  "null for the other kinds.")

    class Meta:
        model = DataSource
        fields = ["id", "name", "kind", "config", "status", "connection_status", "last_synced_at", "created_by",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "status", "last_synced_at", "created_at", "updated_at"]

    @extend_schema_field({"type": "string", "enum": list(connections.STATUSES), "nullable": True,
                          "readOnly": True})
    def get_connection_status(self, source: DataSource) -> str | None:
        return connections.connection_status(source)

    def validate_kind(self, value: str) -> str:
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError("The kind of a data source cannot be changed; create a new one.")
        return value


# --- interactions, query, chat -----------------------------------------------------------------------


class InteractionModelSerializer(serializers.Serializer):
    """Who answered an interaction, and who paid for it."""

    provider = serializers.ChoiceField(choices=PROVIDERS)
    name = serializers.CharField(help_text="The model; empty for builtin.")
    paid_by = serializers.ChoiceField(choices=["builtin", "platform", "org"],
                                      help_text="builtin (nobody), platform (Twig's key) or org (your key).")
    key = serializers.CharField(allow_null=True, help_text='Your key that paid, masked ("sk-…abcd"); else null.')


class InteractionSerializer(serializers.ModelSerializer):
    agent = serializers.CharField(source="agent_id", read_only=True, allow_null=True)
    user = UserEmailField()
    model = serializers.SerializerMethodField()

    class Meta:
        model = Interaction
        fields = ["id", "agent", "user", "kind", "input", "answer", "model", "created_at"]
        read_only_fields = fields

    @extend_schema_field(InteractionModelSerializer)
    def get_model(self, interaction: Interaction) -> dict[str, Any]:
        return {"provider": interaction.provider, "name": interaction.model_name, "paid_by": interaction.paid_by,
                "key": interaction.key_masked or None}


class InteractionFilterSerializer(serializers.Serializer):
    agent = StrictCharField(required=False, max_length=32)
    kind = serializers.ChoiceField(choices=Interaction.Kind.choices, required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)


class AgentReferenceField(StrictCharField):
    """An agent id of the request's org, given as ``agent`` in a request body; validates to the :class:`Agent`.

    With the ``request`` in the serializer's context, an agent hidden from the caller (see
    :func:`~twig_auth.contrib.rest_framework.authz.visible`) is as unknown as one that does not exist.
    """

    default_error_messages = {**StrictCharField.default_error_messages,
                              "unknown": "No agent with this id in your organization."}

    def to_internal_value(self, data: Any) -> Agent:  # type: ignore[override]
        agent_id = super().to_internal_value(data)
        for validator in self.validators:  # NUL and surrogates, before the id reaches the database
            validator(agent_id)
        org = self.context.get("org")
        agent = Agent.objects.of_org(org).filter(pk=agent_id).first() if len(agent_id) <= 64 else None
        request = self.context.get("request")
        if agent is None or (request is not None and not visible(request, agent)):
            self.fail("unknown")
        return agent

    def run_validators(self, value: Any) -> None:
        """Skip: the text validators already ran on the id in :meth:`to_internal_value`."""


class QuerySerializer(serializers.Serializer):
    agent = AgentReferenceField()
    question = StrictCharField(max_length=QUESTION_MAX)


class ChatMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=CHAT_ROLES)
    content = StrictCharField(max_length=QUESTION_MAX, allow_blank=True, trim_whitespace=False)


class ChatSerializer(serializers.Serializer):
    agent = AgentReferenceField()
    messages = ChatMessageSerializer(many=True, allow_empty=False, max_length=MAX_MESSAGES)

    def validate_messages(self, value: list[dict[str, str]]) -> list[dict[str, str]]:
        if not any(m["role"] == "user" for m in value):
            raise serializers.ValidationError("Include at least one message with role \"user\".")
        return value


class QueryAnswerSerializer(serializers.Serializer):
    answer = serializers.CharField()
    interaction_id = serializers.CharField()


class ChatReplySerializer(serializers.Serializer):
    message = ChatMessageSerializer()
    interaction_id = serializers.CharField()
