"""Data sources connected through OAuth (Google Drive, Slack): their connection status, the sync's call to the
provider, and disconnecting them. The connection itself lives in :mod:`twig_auth.connectors` (one
``OAuthToken`` per data source: provider = the source's kind, subject = its id).
"""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from twig_auth.connectors import services as connector_services
from twig_auth.connectors.grants import safe_error_code
from twig_auth.connectors.http import HttpFailure, send
from twig_auth.connectors.models import OAuthToken
from twig_auth.connectors.providers import Provider, get_provider
from twig_auth.connectors.tokens import access_token_for
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import ConnectorUnavailable
from twig_project.workspace.models import DataSource

# kinds connected through OAuth; the provider slug (CONNECTOR_PROVIDERS) is the kind itself
OAUTH_KINDS = frozenset({DataSource.Kind.GOOGLE_DRIVE.value, DataSource.Kind.SLACK.value})
NOT_CONNECTED = "not_connected"
STATUSES = (NOT_CONNECTED, OAuthToken.Status.CONNECTED.value, OAuthToken.Status.CONNECTION_FAILED.value)
# Slack answers 200 {"ok": false, "error": …}: these errors mean the token is refused, like an HTTP 401
REFUSED_TOKEN_ERRORS = frozenset({"invalid_auth", "token_revoked", "token_expired", "not_authed", "account_inactive"})
_MISSING = object()


def uses_oauth(source: DataSource) -> bool:
    return source.kind in OAUTH_KINDS


def provider_of(source: DataSource) -> Provider | None:
    return get_provider(source.kind) if uses_oauth(source) else None


def with_connection_status(queryset: QuerySet[DataSource]) -> QuerySet[DataSource]:
    """Annotate each row with its connection's status (``connection_state``) in the same query."""
    tokens = OAuthToken.objects.filter(org=OuterRef("org"), provider=OuterRef("kind"), subject=OuterRef("pk"))
    return queryset.annotate(connection_state=Subquery(tokens.values("status")[:1]))


def connection_status(source: DataSource) -> str | None:
    """``not_connected``, ``connected`` or ``connection_failed``; None for kinds without OAuth."""
    if not uses_oauth(source):
        return None
    state = getattr(source, "connection_state", _MISSING)
    if state is _MISSING:
        state = (OAuthToken.objects.filter(org_id=source.org_id, provider=source.kind, subject=source.pk)
                 .values_list("status", flat=True).first())
    return state or NOT_CONNECTED


def _refused(answer: Any) -> bool:
    if answer.status == 401:
        return True
    body = answer.json() if answer.status == 200 else None
    return bool(body and body.get("ok") is False and body.get("error") in REFUSED_TOKEN_ERRORS)


def probe(source: DataSource, *, context: RequestContext) -> None:
    """Call the provider's API (``api_probe_url``) with the source's access token, refreshed when needed.

    A token the API refuses is replaced once (refreshing it); raise the connector errors of
    :func:`~twig_auth.connectors.tokens.access_token_for`, or :class:`ConnectorUnavailable` when the API fails.
    """
    provider = provider_of(source)
    if provider is None or not provider.configured:
        raise ConnectorUnavailable(f"{source.get_kind_display()} is not configured on this server.")
    stale: str | None = None
    for _ in range(2):
        token = access_token_for(org=source.org, provider=source.kind, subject=source.pk, stale=stale,
                                 context=context)
        if not provider.api_probe_url:
            return
        try:
            answer = send(provider.api_probe_url, headers={"Authorization": f"Bearer {token}"})
        except HttpFailure as exc:
            raise ConnectorUnavailable(f"{provider.name} could not be reached: {exc.reason}.") from None
        if not _refused(answer):
            if answer.status >= 400:
                raise ConnectorUnavailable(f"{provider.name} answered HTTP {answer.status}.")
            body = answer.json()
            if body is not None and body.get("ok") is False:  # Slack's 200 {"ok": false, "error": …}
                raise ConnectorUnavailable(f"{provider.name} answered “{safe_error_code(body.get('error'))}”.")
            return
        stale = token
    raise ConnectorUnavailable(f"{provider.name} refused a freshly refreshed access token.")


def disconnect(source: DataSource, *, context: RequestContext) -> dict[str, str] | None:
    """Revoke and delete the source's tokens (see :func:`twig_auth.connectors.services.disconnect`)."""
    if not uses_oauth(source):
        return None
    return connector_services.disconnect(org=source.org, provider=source.kind, subject=source.pk, context=context)
