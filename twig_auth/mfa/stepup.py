"""Step-up: sensitive actions need a second factor verified within ``MFA_STEP_UP_SECONDS`` (5 minutes).

The moment of the last second factor lives in the session (``twig_mfa_at``); login with a code, confirming
a new device and the step-up prompt all set it. Access tokens carry it as the ``mfa_at`` claim when they
were obtained with ``otp``. API keys are not interactive and never step up.
"""

from __future__ import annotations

from typing import Any

from twig_auth.conf import app_settings
from twig_auth.core import clock

SESSION_AT = "twig_mfa_at"
SESSION_USED = "twig_mfa_used"


def mark_verified(session: Any) -> None:
    """Record in ``session`` that a second factor was verified now."""
    session[SESSION_AT] = int(clock.now().timestamp())
    session[SESSION_USED] = True


def is_fresh_at(moment: Any) -> bool:
    """Is a second factor verified at Unix time ``moment`` recent enough for a sensitive action?"""
    if not isinstance(moment, int | float) or isinstance(moment, bool):
        return False
    age = clock.now().timestamp() - moment
    return -60 <= age <= app_settings.MFA_STEP_UP_SECONDS


def is_fresh(session: Any) -> bool:
    return session is not None and is_fresh_at(session.get(SESSION_AT))


def seconds_left(session: Any) -> int:
    moment = session.get(SESSION_AT) if session is not None else None
    if not is_fresh_at(moment):
        return 0
    return max(0, int(moment + app_settings.MFA_STEP_UP_SECONDS - clock.now().timestamp()))
