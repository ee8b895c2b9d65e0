"""Step-up for sensitive API calls: a second factor verified within ``MFA_STEP_UP_SECONDS``.

- Web session (browser JavaScript): the session's last second factor (the step-up page or a login code).
- Access token: its ``mfa_at`` claim, present only on tokens obtained with ``otp``; refreshed tokens lack it.
- API key: not interactive, so it cannot step up; creating a key with the ``admin`` scope already did.

Otherwise the call answers 401 ``mfa_required`` with ``"step_up": true``.
"""

from __future__ import annotations

from rest_framework.request import Request

from twig_auth.apikeys.verification import KeyPrincipal
from twig_auth.exceptions import MfaRequired
from twig_auth.mfa import stepup
from twig_auth.tokens.verification import AccessPrincipal

TOKEN_HINT = ("This action needs a second factor from the last {minutes} minutes: get a new token from "
              "POST /api/auth/token with otp, then retry.")
SESSION_HINT = ("This action needs a second factor from the last {minutes} minutes: confirm one at /mfa/verify/ "
                "(set one up at /settings/mfa/ if you have none), then retry.")


def require_recent_mfa(request: Request) -> None:
    """Raise :class:`MfaRequired` unless the caller verified a second factor recently enough."""
    from twig_auth.conf import app_settings

    minutes = max(1, app_settings.MFA_STEP_UP_SECONDS // 60)
    auth = request.auth
    if isinstance(auth, KeyPrincipal):
        return
    if isinstance(auth, AccessPrincipal):
        if stepup.is_fresh_at(auth.mfa_at):
            return
        raise MfaRequired(TOKEN_HINT.format(minutes=minutes), step_up=True)
    if stepup.is_fresh(getattr(request._request, "session", None)):
        return
    raise MfaRequired(SESSION_HINT.format(minutes=minutes), step_up=True)
