"""Password login with lockout, unlock, and password change/reset bookkeeping."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.views.decorators.debug import sensitive_variables

from twig_auth import signals
from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.conf import app_settings
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import AccountLocked, InvalidCredentials
from twig_auth.orgs import policy as org_policy
from twig_auth.orgs.models import Membership
from twig_auth.passwords import lockout

logger = logging.getLogger("twig_auth.passwords")


def find_user_by_email(email: str) -> Any | None:
    """Return the active or inactive user whose email matches case-insensitively, or None."""
    User = get_user_model()
    field = User.get_email_field_name()
    return User._default_manager.filter(**{f"{field}__iexact": lockout.normalize_email(email)}).first()


def policy_for(user: Any | None) -> lockout.LockoutPolicy:
    """Return the lockout policy for ``user``: the strictest of their orgs' policies, else the default."""
    default = lockout.LockoutPolicy.from_document(org_policy.defaults()["lockout"])
    if user is None:
        return default
    result = None
    for org in {m.org for m in Membership.objects.filter(user=user).select_related("org")}:
        p = lockout.LockoutPolicy.from_document(org_policy.effective(org)["lockout"])
        result = p if result is None else result.stricter(p)
    return result or default


def _burn_hash(password: str) -> None:
    """Run the default hasher once so an unknown email costs what a known one does."""
    get_user_model()().set_password(password)


@sensitive_variables("password")
def authenticate_password(*, email: str, password: str, context: RequestContext) -> Any:
    """Return the user for a correct email and password, or raise.

    Raise :class:`AccountLocked` (no hash is run) or :class:`InvalidCredentials` (same answer for
    unknown emails, inactive users and wrong passwords). Writes ``LOGIN_FAILURE`` for each failed
    check and ``ACCOUNT_LOCKED`` when the budget runs out; refusals while locked are signalled and
    logged but not audited one by one. The caller writes ``LOGIN_SUCCESS`` once the session exists.
    """
    email = lockout.normalize_email(email)
    if not email or not password or len(password) > app_settings.PASSWORD_MAX_LENGTH or len(email) > 254:
        _failed(email[:254], "malformed", context)
        raise InvalidCredentials()
    store = lockout.get_store()
    key = lockout.identity_key(email)
    # A locked identity is refused on one read: no user query, no policy, no hash, no write.
    now = lockout.now_ms()
    locked_until = store.locked_until_ms(key, now)
    if locked_until:
        _refused_while_locked(email, context)
        raise AccountLocked(lockout.retry_seconds(locked_until, now))
    user = find_user_by_email(email)
    policy = policy_for(user)
    reservation = store.reserve(key, lockout.now_ms(), policy)
    if not reservation.allowed:
        _refused_while_locked(email, context)
        raise AccountLocked(reservation.retry_after)
    if user is None:
        _burn_hash(password)
        ok = False
    else:
        ok = user.check_password(password) and getattr(user, "is_active", True)
    if ok:
        store.succeed(key)
        return user
    _failed(email, "unknown_email" if user is None else "bad_password", context, user=user)
    if store.fail(key, lockout.now_ms(), policy):
        _locked(email, user, policy, context)
    raise InvalidCredentials()


def _failed(email: str, reason: str, context: RequestContext, *, user: Any = None) -> None:
    record(Event.LOGIN_FAILURE, context=context, user=user, email=email, details={"reason": reason})
    signals.login_failed.send(sender=None, email=email, reason=reason, context=context)


def _refused_while_locked(email: str, context: RequestContext) -> None:
    """Signal and log a refusal; no audit row, so a flood against a locked account writes nothing."""
    logger.info("login refused: account locked (ip=%s)", context.ip)
    signals.login_failed.send(sender=None, email=email, reason="locked", context=context)


def _locked(email: str, user: Any, policy: lockout.LockoutPolicy, context: RequestContext) -> None:
    record(Event.ACCOUNT_LOCKED, context=context, user=user, email=email,
           details={"lockSeconds": policy.lock_seconds, "maxAttempts": policy.max_attempts})
    signals.account_locked.send(sender=None, email=email, until=policy.lock_seconds, context=context)


def record_login(*, user: Any, org: Any, context: RequestContext, method: str = "password",
                 mfa_used: bool = False, mfa_method: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
    """Write ``LOGIN_SUCCESS`` (with ``mfaUsed``) for a login that has produced its session or tokens.
    ``details`` (an SSO login's method, protocol, connection…) replace the default ``{"method": method}``."""
    details = {**(details or {"method": method}), **({"mfaMethod": mfa_method} if mfa_method else {})}
    record(Event.LOGIN_SUCCESS, context=context, org=org, user=user, details=details, mfa_used=mfa_used)
    if org is not None:  # with several orgs and none chosen yet, choosing one (switch_org) notes it
        from twig_auth.orgs.active import mark_signed_in

        mark_signed_in(org, user)
    signals.login_succeeded.send(sender=None, user=user, context=context)


def record_sso_required(*, user: Any, org: Any, context: RequestContext) -> None:
    """Write ``LOGIN_FAILURE`` (reason ``sso_required``) for a right password refused because the org
    enforces SSO: the attempt is visible to the org's admins."""
    email = lockout.normalize_email(getattr(user, user.get_email_field_name(), ""))
    record(Event.LOGIN_FAILURE, context=context, org=org, user=user, email=email,
           details={"reason": "sso_required"})


def record_logout(*, user: Any, org: Any, context: RequestContext) -> None:
    """Write ``LOGOUT`` and revoke the user's refresh-token families (the caller ends the web session)."""
    from twig_auth.tokens.services import revoke_user_tokens

    record(Event.LOGOUT, context=context, org=org, user=user)
    revoke_user_tokens(user)


def unlock(*, email: str, context: RequestContext | None = None) -> bool:
    """Clear the lockout counter of ``email``; return whether it was locked."""
    context = context or RequestContext.system()
    email = lockout.normalize_email(email)
    was_locked = bool(lockout.is_locked(email))
    lockout.get_store().succeed(lockout.identity_key(email))
    record(Event.ACCOUNT_UNLOCKED, context=context, user=find_user_by_email(email), email=email,
           details={"was_locked": was_locked})
    signals.account_unlocked.send(sender=None, email=email, context=context)
    return was_locked


def record_password_changed(*, user: Any, context: RequestContext, via: str) -> None:
    """Write ``PASSWORD_CHANGED`` (or ``PASSWORD_RESET``) and clear any lockout of the account."""
    email = lockout.normalize_email(getattr(user, user.get_email_field_name(), ""))
    lockout.get_store().succeed(lockout.identity_key(email))
    record(Event.PASSWORD_RESET if via == "reset" else Event.PASSWORD_CHANGED, context=context, user=user)
    from twig_auth.tokens.services import revoke_user_tokens

    revoke_user_tokens(user)
    from twig_auth.usersessions.policy import end_user_sessions

    end_user_sessions(user, reason="password_changed", keep=context.session_id or None, actor=context.actor,
                      ip=context.ip)
