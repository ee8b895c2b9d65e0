"""The reference API's views: check who asks, validate input, call one service, serialize the result.

Who may do what is in :mod:`.permissions`: lists are narrowed with ``authorized(…, "view", …)``, one object is
checked through the view's permission classes (``check_object_permissions``) once it is loaded.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Model, QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from twig_auth.apikeys.scopes import METHOD_SCOPES, Scope
from twig_auth.authz.decisions import authorized
from twig_auth.contrib.rest_framework.audit import audit_access
from twig_auth.contrib.rest_framework.authz import request_context, require_object
from twig_auth.contrib.rest_framework.permissions import IsOrgMember
from twig_auth.contrib.rest_framework.schema import OrgSettingsDocument
from twig_auth.contrib.rest_framework.stepup import require_recent_mfa
from twig_auth.contrib.rest_framework.views import TwigAPIView
from twig_auth.exceptions import InvalidInput, NotFound
from twig_auth.orgs import policy
from twig_auth.orgs import services as org_services
from twig_project.workspace import connections, permissions, services
from twig_project.workspace.errors import as_api_error
from twig_project.workspace.llm import LLMError
from twig_project.workspace.models import Agent, DataSource
from twig_project.workspace.serializers import (
    AgentReferenceField,
    AgentSerializer,
    ChatReplySerializer,
    ChatSerializer,
    DataSourceSerializer,
    InteractionFilterSerializer,
    InteractionSerializer,
    QueryAnswerSerializer,
    QuerySerializer,
)

OPAQUE_ID = re.compile(r"[A-Za-z0-9_]{1,64}")


def get_in_org(queryset: QuerySet[Any], pk: str) -> Any:
    """Return the row ``pk`` of an org-filtered queryset; 404 for any other id, well-formed or not."""
    if not OPAQUE_ID.fullmatch(pk):
        raise Http404  # e.g. a NUL byte, which PostgreSQL would refuse in the query itself
    obj: Model | None = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


class OrgAPIView(TwigAPIView):
    """Base of every view here (see :class:`TwigAPIView`): reads need ``read``, writes ``write``."""

    required_scopes = dict(METHOD_SCOPES)

    def visible(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The rows of ``queryset`` the caller may view."""
        return authorized(self.membership, "view", queryset, context=request_context(self.request))

    def checked(self, obj: Any) -> Any:
        """``obj`` once the view's permission classes allow the request on it (403 or 404 otherwise)."""
        self.check_object_permissions(self.request, obj)
        return obj


# --- agents -------------------------------------------------------------------------------------------


class AgentQuerysetMixin(OrgAPIView):
    def agents(self) -> QuerySet[Agent]:
        return Agent.objects.of_org(self.membership.org_id).select_related("created_by", "updated_by")

    def get_agent(self, pk: str) -> Agent:
        """The agent ``pk`` of the org, if the request's action on it is allowed."""
        return self.checked(get_in_org(self.agents(), pk))


@extend_schema(tags=["agents"])
class AgentListView(AgentQuerysetMixin):
    permission_classes = [permissions.CreateResources]

    @extend_schema(responses=AgentSerializer(many=True), summary="List the agents of your organization you may view")
    def get(self, request: Request) -> Response:
        return Response(AgentSerializer(self.visible(self.agents()), many=True).data)

    @extend_schema(request=AgentSerializer, responses={201: AgentSerializer},
                   summary="Create an agent (resources.create: manager+); you then manage it")
    def post(self, request: Request) -> Response:
        serializer = AgentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent = services.create_agent(org=self.membership.org, **serializer.validated_data, context=self.context())
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["agents"])
class AgentDetailView(AgentQuerysetMixin):
    permission_classes = [permissions.AgentAccess]

    @extend_schema(responses=AgentSerializer, summary="Show an agent (view)")
    def get(self, request: Request, pk: str) -> Response:
        agent = self.get_agent(pk)
        audit_access(request, action="view", target=agent)
        return Response(AgentSerializer(agent).data)

    @extend_schema(request=AgentSerializer, responses=AgentSerializer,
                   summary="Replace an agent's name, description, instructions and config, and its model if given "
                           "(edit)")
    def put(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(request=AgentSerializer, responses=AgentSerializer, summary="Change an agent (edit)")
    def patch(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=True)

    def _update(self, request: Request, pk: str, *, partial: bool) -> Response:
        agent = self.get_agent(pk)
        serializer = AgentSerializer(agent, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        agent = services.update_agent(agent=agent, changes=serializer.validated_data, context=self.context())
        return Response(AgentSerializer(agent).data)

    @extend_schema(responses={204: None}, summary="Delete an agent (manage)")
    def delete(self, request: Request, pk: str) -> Response:
        services.delete_agent(agent=self.get_agent(pk), context=self.context())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["agents"])
class AgentDeployView(AgentQuerysetMixin):
    permission_classes = [permissions.DeployAccess]

    @extend_schema(request=None, responses=AgentSerializer,
                   summary="Deploy an agent (deploy, a grant; not by its creator or last modifier)")
    def post(self, request: Request, pk: str) -> Response:
        agent = services.deploy_agent(agent=self.get_agent(pk), context=self.context())
        return Response(AgentSerializer(agent).data)


# --- data sources -------------------------------------------------------------------------------------


class DataSourceQuerysetMixin(OrgAPIView):
    def sources(self) -> QuerySet[DataSource]:
        return connections.with_connection_status(
            DataSource.objects.of_org(self.membership.org_id).select_related("created_by"))

    def get_source(self, pk: str) -> DataSource:
        """The data source ``pk`` of the org, if the request's action on it is allowed."""
        return self.checked(get_in_org(self.sources(), pk))


@extend_schema(tags=["data sources"])
class DataSourceListView(DataSourceQuerysetMixin):
    permission_classes = [permissions.CreateResources]

    @extend_schema(responses=DataSourceSerializer(many=True),
                   summary="List the data sources of your organization you may view")
    def get(self, request: Request) -> Response:
        return Response(DataSourceSerializer(self.visible(self.sources()), many=True).data)

    @extend_schema(request=DataSourceSerializer, responses={201: DataSourceSerializer},
                   summary="Connect a data source (resources.create: manager+)")
    def post(self, request: Request) -> Response:
        serializer = DataSourceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        source = services.create_data_source(org=self.membership.org, **serializer.validated_data,
                                             context=self.context())
        return Response(DataSourceSerializer(source).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["data sources"])
class DataSourceDetailView(DataSourceQuerysetMixin):
    permission_classes = [permissions.DataSourceAccess]

    @extend_schema(responses=DataSourceSerializer, summary="Show a data source (view)")
    def get(self, request: Request, pk: str) -> Response:
        source = self.get_source(pk)
        audit_access(request, action="view", target=source)
        return Response(DataSourceSerializer(source).data)

    @extend_schema(request=DataSourceSerializer, responses=DataSourceSerializer,
                   summary="Change a data source's name or config (edit)")
    def patch(self, request: Request, pk: str) -> Response:
        source = self.get_source(pk)
        serializer = DataSourceSerializer(source, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        source = services.update_data_source(source=source, changes=serializer.validated_data, context=self.context())
        return Response(DataSourceSerializer(source).data)

    @extend_schema(responses={204: None}, summary="Delete a data source (edit)")
    def delete(self, request: Request, pk: str) -> Response:
        services.delete_data_source(source=self.get_source(pk), context=self.context())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["data sources"])
class DataSourceSyncView(DataSourceQuerysetMixin):
    permission_classes = [permissions.SyncAccess]

    @extend_schema(request=None, responses=DataSourceSerializer,
                   summary="Synchronize a data source (process); Google Drive and Slack call their provider with "
                           "the connection's token: 409 not_connected or connection_failed (reconnect), 503 "
                           "connector_unavailable")
    def post(self, request: Request, pk: str) -> Response:
        source = services.sync_data_source(source=self.get_source(pk), context=self.context())
        return Response(DataSourceSerializer(source).data)


# --- interactions, query, chat -----------------------------------------------------------------------


@extend_schema(tags=["interactions"])
class InteractionListView(OrgAPIView):
    permission_classes = [IsOrgMember]

    @extend_schema(
        parameters=[OpenApiParameter("agent", str, description="Only this agent's interactions."),
                    OpenApiParameter("kind", str, enum=["query", "chat"]),
                    OpenApiParameter("limit", int, description="Newest first, at most this many (1–500, 100).")],
        responses=InteractionSerializer(many=True),
        summary="List interactions: your own, or your organization's with interactions.view_all (manager+)",
    )
    def get(self, request: Request) -> Response:
        filters = InteractionFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        qs = permissions.visible_interactions(self.membership).select_related("user")
        if "agent" in wanted:
            qs = qs.filter(agent_id=wanted["agent"])
        if "kind" in wanted:
            qs = qs.filter(kind=wanted["kind"])
        audit_access(request, action="view", resource="interactions",
                     details={"filters": {k: str(wanted[k]) for k in ("agent", "kind") if k in wanted}})
        return Response(InteractionSerializer(qs[: wanted["limit"]], many=True).data)


class AskView(OrgAPIView):
    """Base of ``/api/query`` and ``/api/chat``: the body names an agent the caller may ``use``.

    An agent that does not exist, is in another org or is hidden from the caller is the same 400 naming
    ``agent``; one the caller sees but may not use is 403 ``permission_denied`` with the reason.
    """

    required_scopes = {"POST": Scope.EXECUTE}
    permission_classes = [IsOrgMember]

    def validated_request(self, serializer_class: type[Serializer[Any]]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data,
                                      context={"org": self.membership.org_id, "request": self.request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        try:
            require_object(self.request, data["agent"], "use")
        except NotFound:
            raise InvalidInput({"agent": [AgentReferenceField.default_error_messages["unknown"]]}) from None
        return data


PROVIDER_ERROR = inline_serializer("ProviderError", fields={
    "detail": drf_serializers.CharField(), "code": drf_serializers.CharField()})
PROVIDER_ERRORS = {
    409: OpenApiResponse(PROVIDER_ERROR, description="provider_key_missing: the agent uses your organization's key "
                                                     "and it has none for the agent's provider."),
    502: OpenApiResponse(PROVIDER_ERROR, description="provider_error: the provider refused the key or the request, "
                                                     "failed, or answered something unreadable."),
    503: OpenApiResponse(PROVIDER_ERROR, description="provider_not_configured: the agent uses Twig's key and this "
                                                     "installation has none."),
    504: OpenApiResponse(PROVIDER_ERROR, description="provider_timeout: the provider did not answer in time."),
}


@extend_schema(tags=["query"])
class QueryView(AskView):
    @extend_schema(request=QuerySerializer, responses={200: QueryAnswerSerializer, **PROVIDER_ERRORS},
                   summary="Ask an agent a question (use)")
    def post(self, request: Request) -> Response:
        data = self.validated_request(QuerySerializer)
        try:
            interaction = services.ask(org=self.membership.org, agent=data["agent"], question=data["question"],
                                       context=self.context())
        except LLMError as exc:
            raise as_api_error(exc) from None
        audit_access(request, action="use", target=data["agent"], details={"kind": "query",
                                                                          "interaction": interaction.pk})
        return Response({"answer": interaction.answer, "interaction_id": interaction.pk})


@extend_schema(tags=["query"])
class ChatView(AskView):
    @extend_schema(request=ChatSerializer, responses={200: ChatReplySerializer, **PROVIDER_ERRORS},
                   summary="Chat with an agent: it answers the last user message (use)")
    def post(self, request: Request) -> Response:
        data = self.validated_request(ChatSerializer)
        try:
            interaction = services.chat(org=self.membership.org, agent=data["agent"], messages=data["messages"],
                                        context=self.context())
        except LLMError as exc:
            raise as_api_error(exc) from None
        audit_access(request, action="use", target=data["agent"], details={"kind": "chat",
                                                                          "interaction": interaction.pk})
        return Response({"message": {"role": "assistant", "content": interaction.answer},
                         "interaction_id": interaction.pk})


# --- org settings -------------------------------------------------------------------------------------

SETTINGS_DOCUMENT = OrgSettingsDocument  # its schema comes from the validator's table (twig_auth.orgs.policy)


@extend_schema(tags=["org"])
class OrgSettingsView(OrgAPIView):
    required_scopes = {"*": Scope.ADMIN}
    permission_classes = [permissions.OrgSettingsAccess]

    @extend_schema(responses=SETTINGS_DOCUMENT, summary="Show your organization's effective settings (admin+)")
    def get(self, request: Request) -> Response:
        return Response(policy.effective(self.membership.org))

    @extend_schema(request=SETTINGS_DOCUMENT, responses=SETTINGS_DOCUMENT,
                   summary="Merge changes into your organization's settings (admin+)")
    def patch(self, request: Request) -> Response:
        document: Any = request.data
        require_recent_mfa(request)
        return Response(org_services.update_org_settings(org=self.membership.org, patch=document,
                                                         context=self.context()))
