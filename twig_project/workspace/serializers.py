"""Input validation and output shapes of the reference API. Writes happen in :mod:`.services`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from twig_auth.contrib.rest_framework.authz import visible
from twig_project.workspace.models import (
    DESCRIPTION_MAX,
    INSTRUCTIONS_MAX,
    NAME_MAX,
    QUESTION_MAX,
    Agent,
    DataSource,
    Interaction,
)
from twig_project.workspace.validation import agent_config_problems, json_document_problem

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


class AgentSerializer(serializers.ModelSerializer):
    """An agent as the API shows it; as input: ``name`` (required), ``description``, ``instructions``, ``config``."""

    name = StrictCharField(max_length=NAME_MAX, trim_whitespace=True)
    description = StrictCharField(max_length=DESCRIPTION_MAX, allow_blank=True, required=False, default="")
    instructions = StrictCharField(max_length=INSTRUCTIONS_MAX, allow_blank=True, required=False, default="")
    config = JSONObjectField(required=False, default=dict,
                             help_text='{"faq": {"<keyword>": "<answer>"}, "fallback": "<answer>"}')
    created_by = UserEmailField()
    updated_by = UserEmailField()

    class Meta:
        model = Agent
        fields = ["id", "name", "description", "instructions", "config", "status", "created_by", "updated_by",
                  "created_at", "updated_at", "deployed_at"]
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

    class Meta:
        model = DataSource
        fields = ["id", "name", "kind", "config", "status", "last_synced_at", "created_by", "created_at",
                  "updated_at"]
        read_only_fields = ["id", "status", "last_synced_at", "created_at", "updated_at"]

    def validate_kind(self, value: str) -> str:
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError("The kind of a data source cannot be changed; create a new one.")
        return value


# --- interactions, query, chat -----------------------------------------------------------------------


class InteractionSerializer(serializers.ModelSerializer):
    agent = serializers.CharField(source="agent_id", read_only=True, allow_null=True)
    user = UserEmailField()

    class Meta:
        model = Interaction
        fields = ["id", "agent", "user", "kind", "input", "answer", "created_at"]
        read_only_fields = fields


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
