"""The small request context every service takes instead of an ``HttpRequest``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twig_auth.core.http import client_ip, user_agent

if TYPE_CHECKING:
    from django.http import HttpRequest


@dataclass(frozen=True)
class RequestContext:
    """Who acts, from where. Views, DRF, commands and tasks all build one of these."""

    actor: Any = None
    ip: str | None = None
    user_agent: str = ""
    session_id: str = ""
    mfa_used: bool = False

    @classmethod
    def from_request(cls, request: HttpRequest, *, actor: Any = None) -> RequestContext:
        user = actor if actor is not None else getattr(request, "user", None)
        if user is not None and not getattr(user, "is_authenticated", False):
            user = None
        session = getattr(request, "session", None)
        session_key = getattr(session, "record_key", None) or getattr(session, "session_key", None) or ""
        mfa_used = bool(session.get("twig_mfa_used", False)) if session is not None else False
        return cls(actor=user, ip=client_ip(request), user_agent=user_agent(request),
                   session_id=session_key, mfa_used=mfa_used)

    @classmethod
    def system(cls, actor: Any = None) -> RequestContext:
        """Return the context of an operator command or a background task."""
        return cls(actor=actor, ip=None, user_agent="system")
