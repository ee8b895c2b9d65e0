"""Session policy per org, ending sessions, and the concurrent-session limit."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.usersessions.engine import forget
from twig_auth.usersessions.models import UserSession


def session_policy(org_id: Any) -> dict[str, Any]:
    """Return the org's ``session`` policy (defaults without an org); cached per process for 30 s."""
    from twig_auth.orgs.policy import cached_effective

    return cached_effective(org_id)["session"]


def forget_policies() -> None:
    from twig_auth.orgs.policy import forget_cached

    forget_cached()


def end_session(session_key: str, *, reason: str, actor: Any = None, ip: str | None = None,
                agent: str = "") -> bool:
    """Revoke one session now; return whether it was live. Audited as ``SESSION_REVOKED``."""
    row = UserSession.objects.filter(pk=session_key, revoked_at__isnull=True).select_related("user").first()
    if row is None:
        return False
    UserSession.objects.filter(pk=session_key, revoked_at__isnull=True).update(revoked_at=clock.now(),
                                                                               revoke_reason=reason[:40])
    forget(session_key)
    record(Event.SESSION_REVOKED, context=RequestContext(actor=actor, ip=ip, user_agent=agent),
           org=row.org, user=row.user, target=row,
           details={"reason": reason, "session": session_key[:8], "device": row.device_label, "ip": row.ip,
                    "by": getattr(actor, "email", None) if actor is not None else None})
    return True


def live_sessions(user: Any) -> QuerySet[UserSession]:
    return UserSession.objects.live(clock.now()).filter(user=user)


def end_user_sessions(user: Any, *, reason: str, keep: str | None = None, actor: Any = None,
                      ip: str | None = None, revoke_tokens: bool = False) -> int:
    """End every live session of ``user`` except ``keep``; return how many ended.

    ``revoke_tokens`` also ends the user's API token families (an admin signing a member out everywhere).
    """
    keys = list(live_sessions(user).exclude(pk=keep or "").values_list("pk", flat=True))
    ended = sum(end_session(k, reason=reason, actor=actor, ip=ip) for k in keys)
    if revoke_tokens:
        from twig_auth.tokens.services import revoke_user_tokens

        revoke_user_tokens(user)
    return ended


def enforce_max_concurrent(user: Any, *, ip: str | None = None) -> int:
    """Before a new login's session joins, end the oldest ones beyond the strictest ``maxConcurrent``."""
    from twig_auth.orgs.models import Membership

    org_ids = list(Membership.objects.filter(user=user).values_list("org_id", flat=True)) or [None]
    limit = min(session_policy(org_id)["maxConcurrent"] for org_id in org_ids)
    live = list(live_sessions(user).order_by("created_at").values_list("pk", flat=True))
    excess = len(live) - (limit - 1)
    return sum(end_session(k, reason="max_concurrent", actor=None, ip=ip) for k in live[:max(0, excess)])
