"""When each member of an org was last active, from what the credentials already record. Three aggregate
queries per org whatever its size; nothing is written on the request path.

A member's last activity is the latest of:

- ``Membership.last_login_at``: a sign-in into the org (password, token or SSO), or choosing it after one;
- their web sessions in the org: ``UserSession.last_seen_at`` (written at most every
  ``SESSION_ACTIVITY_WRITE_SECONDS`` while the session is used);
- their access tokens: the newest refresh-token row of the membership (each token login and each refresh
  writes one);
- their API keys: ``ApiKey.last_used_at`` of the keys they created (written in batches every
  ``API_KEY_USAGE_FLUSH_SECONDS``; this process's buffer is flushed first);
- and, as a floor, when they joined or were last reactivated: a new or just reactivated member is never
  "inactive since forever".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Max, QuerySet

from twig_auth.apikeys.models import ApiKey
from twig_auth.orgs.models import Membership
from twig_auth.tokens.models import RefreshToken
from twig_auth.usersessions.models import UserSession


@dataclass(frozen=True)
class Activity:
    """The moments each source last saw the member (None: never)."""

    joined: dt.datetime
    reactivated: dt.datetime | None
    login: dt.datetime | None
    session: dt.datetime | None
    token: dt.datetime | None
    api_key: dt.datetime | None

    @property
    def last_active(self) -> dt.datetime | None:
        """The latest credential activity (login, session, token, key), None when there was none."""
        seen = [t for t in (self.login, self.session, self.token, self.api_key) if t is not None]
        return max(seen) if seen else None

    @property
    def inactive_since(self) -> dt.datetime:
        """From when inactivity counts: the last activity, never before joining or the last reactivation."""
        floor = max(t for t in (self.joined, self.reactivated) if t is not None)
        last = self.last_active
        return floor if last is None or last < floor else last


def _max_by(qs: QuerySet[Any], key: str, field: str) -> dict[Any, dt.datetime]:
    rows = qs.order_by().values(key).annotate(latest=Max(field)).values_list(key, "latest")
    return {k: v for k, v in rows if v is not None}


def activity_of(org_id: int, members: Iterable[Membership]) -> dict[int, Activity]:
    """Return ``{membership pk: Activity}`` for ``members`` of org ``org_id``: three queries (sessions, tokens,
    keys), filtered to these members when there are few, else to the whole org."""
    members = list(members)
    if not members:
        return {}
    from twig_auth.apikeys.usage import buffer

    buffer.flush()  # this process's unwritten key uses count too
    few = len(members) <= 500
    sessions = UserSession.objects.filter(org_id=org_id)
    tokens = RefreshToken.objects.filter(org_id=org_id)
    keys = ApiKey.objects.filter(org_id=org_id, last_used_at__isnull=False)
    if few:
        sessions = sessions.filter(user_id__in=[m.user_id for m in members])
        tokens = tokens.filter(membership_id__in=[m.pk for m in members])
        keys = keys.filter(created_by_id__in=[m.pk for m in members])
    by_user = _max_by(sessions, "user_id", "last_seen_at")
    by_token = _max_by(tokens, "membership_id", "created_at")
    by_key = _max_by(keys, "created_by_id", "last_used_at")
    return {m.pk: Activity(joined=m.created_at, reactivated=m.reactivated_at, login=m.last_login_at,
                           session=by_user.get(m.user_id), token=by_token.get(m.pk), api_key=by_key.get(m.pk))
            for m in members}
