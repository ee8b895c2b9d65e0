"""Domain errors. They carry a stable ``code``; their HTTP form lives in contrib/rest_framework."""

from __future__ import annotations


class TwigAuthError(Exception):
    """Base of every twig_auth domain error."""

    code = "error"
    default_detail = "The request could not be completed."

    def __init__(self, detail: str | None = None, **extra: object) -> None:
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)


class InvalidInput(TwigAuthError):
    """Input failed validation; ``errors`` maps each bad field to its messages."""

    code = "invalid"
    default_detail = "Some fields are invalid."

    def __init__(self, errors: dict[str, list[str]], detail: str | None = None) -> None:
        super().__init__(detail)
        self.errors = errors


class InvalidCredentials(TwigAuthError):
    code = "invalid_credentials"
    default_detail = "Invalid email or password."


class AccountLocked(TwigAuthError):
    """Too many failed logins; ``retry_after`` is in whole seconds."""

    code = "account_locked"
    default_detail = "Too many failed sign-in attempts. Try again later."

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        minutes = max(1, -(-retry_after // 60))
        super().__init__(detail or f"Too many failed sign-in attempts. Try again in {minutes} minute"
                         f"{'s' if minutes != 1 else ''}.")
        self.retry_after = retry_after


class PermissionDenied(TwigAuthError):
    code = "permission_denied"
    default_detail = "You do not have permission to perform this action."


class NotFound(TwigAuthError):
    code = "not_found"
    default_detail = "Not found."


class Conflict(TwigAuthError):
    """The change would break an invariant (last super admin, duplicate member…)."""

    code = "invalid"
    default_detail = "The change conflicts with the current state."
