"""The per-account budget of wrong second-factor codes, on the lockout store (Redis Lua or a locked row).

An attempt is reserved *before* any code is checked, so 50 parallel guesses check at most
``MFA_MAX_FAILURES`` codes; the failure that fills the budget pauses verification for ``MFA_LOCK_SECONDS``.
A right code clears the count. This sits beside the password lockout, not inside it: a correct password
does not reset wrong codes, and wrong codes do not lock the password.
"""

from __future__ import annotations

from typing import Any

from twig_auth.conf import app_settings
from twig_auth.core.crypto import digest
from twig_auth.exceptions import MfaThrottled
from twig_auth.passwords import lockout


def _key(user: Any) -> str:
    return "twig:mfa:attempts:" + digest(f"user:{getattr(user, 'pk', user)}")[:40]


def _policy() -> lockout.LockoutPolicy:
    return lockout.LockoutPolicy(app_settings.MFA_MAX_FAILURES, app_settings.MFA_FAILURE_WINDOW_SECONDS,
                                 app_settings.MFA_LOCK_SECONDS)


def reserve(user: Any) -> None:
    """Take one attempt or raise :class:`MfaThrottled` with the seconds to wait."""
    reservation = lockout.get_store().reserve(_key(user), lockout.now_ms(), _policy())
    if not reservation.allowed:
        raise MfaThrottled(reservation.retry_after)


def failed(user: Any) -> bool:
    """Count a wrong code; return True when this one paused verification."""
    return lockout.get_store().fail(_key(user), lockout.now_ms(), _policy())


def succeeded(user: Any) -> None:
    lockout.get_store().succeed(_key(user))


def reset(user: Any) -> None:
    """Clear the count (an admin reset the user's MFA)."""
    lockout.get_store().succeed(_key(user))
