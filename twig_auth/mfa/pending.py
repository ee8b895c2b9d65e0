"""The half-finished login between the password and the second factor, kept in the (anonymous) session.

It names the user and when the password was checked; it expires after ``MFA_LOGIN_SECONDS`` and is
cleared by the login it completes. Nothing else is authenticated until then.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from twig_auth.conf import app_settings
from twig_auth.core import clock

SESSION_PENDING = "twig_mfa_pending"


def begin(session: Any, user: Any, next_url: str = "", sso: dict[str, Any] | None = None) -> None:
    """``sso`` (an SSO login owing a twig second factor): ``{"org": id, "details": LOGIN_SUCCESS details}``,
    so the login the code completes keeps the SSO org active and is audited as an SSO login."""
    session[SESSION_PENDING] = {"uid": str(user.pk), "at": int(clock.now().timestamp()), "next": next_url[:2000],
                                **({"sso": sso} if sso else {})}


def current(session: Any) -> dict[str, Any] | None:
    data = session.get(SESSION_PENDING)
    if not isinstance(data, dict) or "uid" not in data or "at" not in data:
        return None
    if clock.now().timestamp() - data["at"] > app_settings.MFA_LOGIN_SECONDS:
        return None
    return data


def pending_user(session: Any) -> Any | None:
    """Return the active user whose password was checked and who still owes a second factor, or None."""
    data = current(session)
    if data is None:
        return None
    User = get_user_model()
    try:
        user = User._default_manager.get(pk=User._meta.pk.to_python(data["uid"]))
    except Exception:  # noqa: BLE001  (a malformed or stale id is simply no user)
        return None
    return user if getattr(user, "is_active", True) else None


def clear(session: Any) -> None:
    session.pop(SESSION_PENDING, None)
