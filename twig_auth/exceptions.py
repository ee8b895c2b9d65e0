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


class InvalidApiKey(TwigAuthError):
    code = "invalid_api_key"
    default_detail = "The API key is not valid."


class EnvironmentMismatch(TwigAuthError):
    code = "environment_mismatch"
    default_detail = "This API key is for another environment."


class InsufficientScope(TwigAuthError):
    """The key lacks the scope the endpoint needs; ``required_scope`` names it."""

    code = "insufficient_scope"

    def __init__(self, required_scope: str, detail: str | None = None) -> None:
        scope = str(required_scope)
        super().__init__(detail or f"This API key needs the '{scope}' scope for this request.", required_scope=scope)
        self.required_scope = scope


class InvalidToken(TwigAuthError):
    """An access or refresh token that is malformed, tampered with, signed by an unknown key, or revoked."""

    code = "invalid_token"
    default_detail = "The token is not valid."


class TokenExpired(TwigAuthError):
    code = "token_expired"
    default_detail = "The token has expired."


class TokenReused(TwigAuthError):
    """A refresh token presented a second time; its whole family has been revoked."""

    code = "token_reused"
    default_detail = "This refresh token was already used; every token of its family has been revoked."


class MfaRequired(TwigAuthError):
    """The password was right but a second factor is missing or wrong (or a sensitive action needs a fresh one)."""

    code = "mfa_required"
    default_detail = "Enter the code from your authenticator app, a text message or a recovery code."


class MfaEnrollmentRequired(TwigAuthError):
    """The org requires MFA of this member, the grace period is over and no device is set up."""

    code = "mfa_enrollment_required"
    default_detail = ("Your organization requires two-factor authentication. Set it up on the Two-factor "
                      "authentication page, then try again.")


class MfaThrottled(TwigAuthError):
    """Too many wrong codes (per account) or messages (per number); ``retry_after`` is in whole seconds."""

    code = "rate_limit_exceeded"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        minutes = max(1, -(-retry_after // 60))
        super().__init__(detail or f"Too many attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}.")
        self.retry_after = retry_after


class SmsDeliveryFailed(TwigAuthError):
    """The SMS gateway did not accept the message (the reason is logged without the code)."""

    code = "sms_delivery_failed"
    default_detail = "We could not send the text message. Try again in a moment, or use another method."


class RateLimited(TwigAuthError):
    """A rate-limit bucket is empty. ``retry_after`` is whole seconds until a token is back; ``headers`` are
    the ``X-RateLimit-*`` and ``Retry-After`` headers the answer carries (pages and API alike)."""

    code = "rate_limit_exceeded"

    def __init__(self, retry_after: int, detail: str | None = None, *,
                 headers: dict[str, str] | None = None) -> None:
        retry_after = max(1, int(retry_after))
        super().__init__(detail or f"Rate limit exceeded. Try again in {retry_after} second"
                         f"{'s' if retry_after != 1 else ''}.", retry_after=retry_after)
        self.retry_after = retry_after
        self.headers = {**(headers or {}), "Retry-After": str(retry_after)}


class IpNotAllowed(TwigAuthError):
    """The request's client IP is outside the organization's (or the API key's) allowlist."""

    code = "ip_not_allowed"
    default_detail = "Requests from your IP address are not allowed for this organization."


class SsoRequired(TwigAuthError):
    """The organization signs its members in with single sign-on; ``sso_url`` (when it has an enabled
    connection) is where that sign-in starts. Answered only after the password was verified."""

    code = "sso_required"
    default_detail = "Your organization signs in with single sign-on. Sign in with SSO instead of a password."


class DecryptionFailed(TwigAuthError):
    """A stored secret could not be decrypted: its key version is not configured, or the ciphertext was moved
    to another row or altered. ``key_version`` (in ``extra``) names the key when the token is readable."""

    code = "decryption_failed"
    default_detail = "A stored secret could not be decrypted."


class NotConnected(TwigAuthError):
    """A connector was asked for a token but was never connected (or was disconnected)."""

    code = "not_connected"
    default_detail = "This data source is not connected. Connect it first."


class ConnectionFailed(TwigAuthError):
    """The provider refused the connector's refresh token (revoked, expired): only a reconnection helps."""

    code = "connection_failed"
    default_detail = "The connection to the provider no longer works. Reconnect the data source."


class ConnectorUnavailable(TwigAuthError):
    """The provider could not be reached or failed (network, timeout, 5xx); the connection itself is kept."""

    code = "connector_unavailable"
    default_detail = "The provider could not be reached. Try again in a moment."


class ServiceUnavailable(TwigAuthError):
    """A store every request needs (the database) cannot be reached right now; ``retry_after`` is in whole
    seconds. The request's transaction, if any, did not commit (unless the connection broke during the
    COMMIT itself, where the outcome is unknown to the server too)."""

    code = "service_unavailable"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        retry_after = max(1, int(retry_after))
        super().__init__(detail or f"The service is temporarily unavailable. Try again in {retry_after} second"
                         f"{'s' if retry_after != 1 else ''}.", retry_after=retry_after)
        self.retry_after = retry_after
