"""A usable access token for a connection, refreshed once however many callers need it at the same moment.

Single flight, across threads and processes, on SQLite and PostgreSQL alike: a caller that finds the access
token expired (or expiring within ``CONNECTOR_REFRESH_LEEWAY_SECONDS``) tries to take the row's refresh lease
with one conditional UPDATE — "set the lease to mine where the lease is free and ``version`` is still the one
I read". The database serializes those UPDATEs on the row, so exactly one caller wins; it calls the token
endpoint (outside any transaction), stores the result and frees the lease, bumping ``version``. Every other
caller waits, re-reading the row until the version moves, and then uses the new token. A refresh token the
provider rotated is stored at once, so the old one is never sent again.

A lease outlives a crashed holder by at most :func:`lease_seconds`; the waiters give up after as long and answer
:class:`~twig_auth.exceptions.ConnectorUnavailable`.

Call :func:`access_token_for` outside ``transaction.atomic``: inside one, the winner's lease (PostgreSQL) or the
whole write lock (SQLite) would be held until that outer transaction ends.
"""

from __future__ import annotations

import datetime as dt
import time

from django.db.models import Q

from twig_auth.connectors import services
from twig_auth.connectors.grants import GrantError, refresh
from twig_auth.connectors.models import OAuthToken
from twig_auth.connectors.providers import get_provider
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.core.crypto import random_base62
from twig_auth.exceptions import ConnectionFailed, ConnectorUnavailable, NotConnected

POLL_START_SECONDS = 0.02
POLL_MAX_SECONDS = 0.25


def lease_seconds() -> int:
    """How long a refresh lease holds: the token call's timeout, with room to store the answer."""
    from twig_auth.conf import app_settings

    return int(app_settings.CONNECTOR_HTTP_TIMEOUT) * 2 + 5


def _leeway() -> dt.timedelta:
    from twig_auth.conf import app_settings

    return dt.timedelta(seconds=app_settings.CONNECTOR_REFRESH_LEEWAY_SECONDS)


def _usable(token: OAuthToken, now: dt.datetime, stale: str | None) -> str | None:
    """The row's access token when it can be used now, else None."""
    access = token.access_token
    if not access or (stale is not None and access == stale):
        return None
    if token.expires_at is not None and token.expires_at - _leeway() <= now:
        return None
    return access


def _failed(token: OAuthToken) -> ConnectionFailed:
    return ConnectionFailed(f"The {token.provider.replace('_', ' ').title()} connection no longer works "
                            "(the provider refused it). Reconnect the data source.", provider=token.provider)


def access_token_for(*, org: object, provider: str, subject: str, stale: str | None = None,
                     context: RequestContext | None = None) -> str:
    """Return an access token of the connection ``(org, provider, subject)`` that is valid now.

    ``stale``: an access token the caller saw refused by the provider's API; a different (newer) one is
    returned, refreshing if no other caller did already. Raise :class:`NotConnected` (no connection),
    :class:`ConnectionFailed` (the provider refused the refresh token: the connection is now
    ``connection_failed`` and its tokens are wiped) or :class:`ConnectorUnavailable` (the provider could not be
    reached; nothing changed).
    """
    context = context or RequestContext.system()
    deadline = time.monotonic() + lease_seconds()
    pause = POLL_START_SECONDS
    while True:
        token = OAuthToken.objects.filter(org=org, provider=provider, subject=subject).first()
        if token is None:
            raise NotConnected()
        if token.status == OAuthToken.Status.CONNECTION_FAILED:
            raise _failed(token)
        now = clock.now()
        access = _usable(token, now, stale)
        if access is not None:
            return access
        lease_free = Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lt=now)
        lease_id = random_base62(24)
        taken = OAuthToken.objects.filter(lease_free, pk=token.pk, version=token.version).update(
            refresh_lease_id=lease_id, refresh_lease_until=now + dt.timedelta(seconds=lease_seconds()))
        if taken:
            return _refresh(token, lease_id, context)
        # someone else refreshes (or just did): wait for the row to move on, then read it again
        if time.monotonic() > deadline:
            raise ConnectorUnavailable("Timed out waiting for the connection's token to be refreshed.")
        time.sleep(pause)
        pause = min(pause * 2, POLL_MAX_SECONDS)


def _refresh(token: OAuthToken, lease_id: str, context: RequestContext) -> str:
    if not token.refresh_token:  # an expiring access token without a refresh token: only reconnecting helps
        services.mark_failed(token=token, lease_id=lease_id, reason="the access token expired and the provider "
                             "gave no refresh token", error="", context=context)
        raise _failed(token)
    provider = get_provider(token.provider)
    if provider is None or not provider.configured:
        reason = f"the provider {token.provider!r} is not configured"
        services.refresh_unavailable(token=token, lease_id=lease_id, reason=reason, context=context)
        raise ConnectorUnavailable(f"The {token.provider} provider is not configured on this server.")
    try:
        tokens = refresh(provider, refresh_token=token.refresh_token)
    except GrantError as exc:
        if exc.kind == "dead_grant":
            services.mark_failed(token=token, lease_id=lease_id, reason=exc.reason, error=exc.error, context=context)
            raise _failed(token) from None
        services.refresh_unavailable(token=token, lease_id=lease_id, reason=exc.reason, context=context)
        raise ConnectorUnavailable(f"{provider.name} could not refresh the connection: {exc.reason}.") from None
    if not services.store_refreshed(token=token, lease_id=lease_id, tokens=tokens, context=context):
        # disconnected while we refreshed: the new tokens belong to nobody, so they are revoked at once
        services.revoke_pair(provider, tokens.refresh_token if tokens.refresh_token != token.refresh_token else "",
                             tokens.access_token)
        raise NotConnected()
    return tokens.access_token
