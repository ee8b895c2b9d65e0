"""Write workflows of connectors: complete a connection, record a failed one, store a refresh, mark a
connection failed, disconnect. Each writes in one transaction and leaves an audit event whose details name the
provider and subject but never a token. Calls to the provider (revocation) happen outside the transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.connectors.grants import TokenSet
from twig_auth.connectors.models import OAuthToken
from twig_auth.connectors.providers import Provider, get_provider
from twig_auth.connectors.revoke import revoke_token
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import DecryptionFailed
from twig_auth.signals import connector_connected, connector_disconnected

logger = logging.getLogger("twig_auth.connectors")


def _actor(context: RequestContext) -> Any:
    return context.actor if getattr(context.actor, "pk", None) else None


def _expiry(tokens: TokenSet, now: dt.datetime) -> dt.datetime | None:
    return now + dt.timedelta(seconds=tokens.expires_in) if tokens.expires_in else None


def _secrets_of(token: OAuthToken) -> tuple[str, str]:
    """``(refresh_token, access_token)`` of a row, or empty ones when they cannot be decrypted any more."""
    try:
        return token.refresh_token or "", token.access_token or ""
    except DecryptionFailed:
        return "", ""


def revoke_pair(provider: Provider | None, refresh: str, access: str) -> dict[str, str]:
    """Revoke a refresh token, then an access token, at ``provider`` (RFC 7009). Return each outcome
    (``revoked``, ``failed``, ``not_supported`` or ``none`` when there was no such token)."""
    outcome = {}
    for name, value, hint in (("refresh", refresh, "refresh_token"), ("access", access, "access_token")):
        if not value:
            outcome[name] = "none"
        elif provider is None:
            outcome[name] = "not_supported"
        else:
            outcome[name] = revoke_token(provider, value, hint)
    return outcome


def _store_connection(*, org: Any, provider: Provider, subject: str, tokens: TokenSet, context: RequestContext,
                      now: dt.datetime) -> tuple[OAuthToken, bool, tuple[str, str]]:
    """Insert or update the connection row and audit it, in one transaction (see :func:`complete_connection`)."""
    with transaction.atomic():
        token = (OAuthToken.objects.select_for_update()
                 .filter(org=org, provider=provider.slug, subject=subject).first())
        reconnected = token is not None
        previous = _secrets_of(token) if token is not None else ("", "")
        if token is None:
            token = OAuthToken(org=org, provider=provider.slug, subject=subject, created_at=now)
        else:
            token.version += 1
        token.status = OAuthToken.Status.CONNECTED
        token.access_token = tokens.access_token
        token.refresh_token = tokens.refresh_token
        token.token_type = tokens.token_type
        token.scope = tokens.scope
        token.expires_at = _expiry(tokens, now)
        token.refresh_lease_id, token.refresh_lease_until = "", None
        token.connected_by = _actor(context)
        token.updated_at = now
        token.last_refreshed_at = None
        token.last_error = ""
        token.save()
        record(Event.CONNECTOR_CONNECTED, context=context, org=org, target=token,
               details={"provider": provider.slug, "subject": subject, "scope": tokens.scope,
                        "reconnected": reconnected, "refreshable": bool(tokens.refresh_token),
                        "expiresIn": tokens.expires_in})
    return token, reconnected, previous


def complete_connection(*, org: Any, provider: Provider, subject: str, tokens: TokenSet,
                        context: RequestContext) -> OAuthToken:
    """Store ``tokens`` as the connection of ``subject`` (replacing an earlier one, whose tokens are then
    revoked) and audit ``CONNECTOR_CONNECTED``."""
    now = clock.now()
    try:
        token, reconnected, previous = _store_connection(org=org, provider=provider, subject=subject,
                                                         tokens=tokens, context=context, now=now)
    except IntegrityError:  # another member's first connect of this subject committed between our read and insert
        token, reconnected, previous = _store_connection(org=org, provider=provider, subject=subject,
                                                         tokens=tokens, context=context, now=now)
    stale = tuple(old if old not in (tokens.refresh_token, tokens.access_token) else "" for old in previous)
    if any(stale):
        transaction.on_commit(lambda: revoke_pair(provider, *stale))
    connector_connected.send(sender=OAuthToken, token=token, reconnected=reconnected)
    return token


@transaction.atomic
def connect_failed(*, org: Any, provider: str, subject: str, reason: str, context: RequestContext,
                   error: str = "") -> None:
    """Audit a connection that did not complete (``CONNECTOR_CONNECT_FAILED``); ``reason`` is ours, ``error``
    the provider's error code when it gave a well-formed one."""
    details = {"provider": provider, "subject": subject, "reason": reason}
    if error:
        details["error"] = error
    record(Event.CONNECTOR_CONNECT_FAILED, context=context, org=org, details=details)


def store_refreshed(*, token: OAuthToken, lease_id: str, tokens: TokenSet, context: RequestContext) -> bool:
    """Save a refresh's result onto ``token`` if this caller still holds its lease; audit ``CONNECTOR_REFRESHED``.

    Return False when the row is gone (disconnected meanwhile) or the lease was taken over: then the new tokens
    were not stored.
    """
    now = clock.now()
    with transaction.atomic():
        row = OAuthToken.objects.select_for_update().filter(pk=token.pk, refresh_lease_id=lease_id).first()
        if row is None:
            return False
        rotated = bool(tokens.refresh_token) and tokens.refresh_token != row.refresh_token
        row.access_token = tokens.access_token
        if rotated:
            row.refresh_token = tokens.refresh_token
        row.token_type = tokens.token_type
        if tokens.scope:
            row.scope = tokens.scope
        row.expires_at = _expiry(tokens, now)
        row.version = F("version") + 1
        row.refresh_lease_id, row.refresh_lease_until = "", None
        row.status = OAuthToken.Status.CONNECTED
        row.last_refreshed_at = row.updated_at = now
        row.last_error = ""
        row.save()
        record(Event.CONNECTOR_REFRESHED, context=context, org=row.org, target=row,
               details={"provider": row.provider, "subject": row.subject, "rotated": rotated,
                        "expiresIn": tokens.expires_in})
    return True


def mark_failed(*, token: OAuthToken, lease_id: str, reason: str, error: str, context: RequestContext) -> None:
    """The provider refused the refresh token: wipe both tokens, set ``connection_failed`` and audit
    ``CONNECTOR_REFRESH_FAILED``. Only the holder of the refresh lease may do this."""
    with transaction.atomic():
        row = OAuthToken.objects.select_for_update().filter(pk=token.pk, refresh_lease_id=lease_id).first()
        if row is None:
            return
        row.status = OAuthToken.Status.CONNECTION_FAILED
        row.access_token = row.refresh_token = ""
        row.expires_at = None
        row.version = F("version") + 1
        row.refresh_lease_id, row.refresh_lease_until = "", None
        row.updated_at = clock.now()
        row.last_error = reason[:300]
        row.save()
        record(Event.CONNECTOR_REFRESH_FAILED, context=context, org=row.org, target=row,
               details={"provider": row.provider, "subject": row.subject, "reason": reason, "error": error,
                        "status": OAuthToken.Status.CONNECTION_FAILED})


def refresh_unavailable(*, token: OAuthToken, lease_id: str, reason: str, context: RequestContext) -> None:
    """A refresh could not be done (network, 5xx, client refused): free the lease so a later caller retries,
    keep the status, remember why, audit ``CONNECTOR_REFRESH_FAILED``."""
    with transaction.atomic():
        updated = OAuthToken.objects.filter(pk=token.pk, refresh_lease_id=lease_id).update(
            refresh_lease_id="", refresh_lease_until=None, last_error=reason[:300], updated_at=clock.now())
        if updated:
            record(Event.CONNECTOR_REFRESH_FAILED, context=context, org=token.org, target=token,
                   details={"provider": token.provider, "subject": token.subject, "reason": reason,
                            "status": token.status})


def disconnect(*, org: Any, provider: str, subject: str, context: RequestContext) -> dict[str, str] | None:
    """Revoke the connection's tokens at the provider (RFC 7009, refresh token first), delete them and audit
    ``CONNECTOR_DISCONNECTED`` with each revocation's outcome. The tokens are deleted even when the provider
    cannot be reached (its outcome is then ``failed``). Return the outcomes, or None when nothing was connected.
    """
    token = OAuthToken.objects.filter(org=org, provider=provider, subject=subject).first()
    if token is None:
        return None
    refresh, access = _secrets_of(token)
    outcome = revoke_pair(get_provider(provider), refresh, access)
    if "failed" in outcome.values():
        logger.warning("Revoking the %s tokens of %s failed at the provider; they are deleted here anyway.",
                       provider, subject)
    with transaction.atomic():
        deleted, _ = OAuthToken.objects.filter(pk=token.pk).delete()
        record(Event.CONNECTOR_DISCONNECTED, context=context, org=org, target=token,
               details={"provider": provider, "subject": subject, "revoked": outcome, "deleted": bool(deleted)})
    connector_disconnected.send(sender=OAuthToken, org=org, provider=provider, subject=subject)
    return outcome
