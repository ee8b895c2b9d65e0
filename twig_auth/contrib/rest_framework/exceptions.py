"""The DRF exception handler: every API error as ``{"detail", "code", ...}`` with the contract's codes."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework import status
from rest_framework.response import Response

from twig_auth import exceptions as domain
from twig_auth.core import unavailable

logger = logging.getLogger("twig_auth.api")

# domain error class -> HTTP status
DOMAIN_STATUS: dict[type[domain.TwigAuthError], int] = {
    domain.InvalidInput: 400,
    domain.Conflict: 400,
    domain.InvalidCredentials: 401,
    domain.InvalidApiKey: 401,
    domain.EnvironmentMismatch: 401,
    domain.InvalidToken: 401,
    domain.TokenExpired: 401,
    domain.TokenReused: 401,
    domain.InsufficientScope: 403,
    domain.AccountLocked: 403,
    domain.PermissionDenied: 403,
    domain.NotFound: 404,
    domain.MfaRequired: 401,
    domain.MfaEnrollmentRequired: 403,
    domain.MfaThrottled: 429,
    domain.SmsDeliveryFailed: 503,
    domain.RateLimited: 429,
    domain.IpNotAllowed: 403,
    domain.SsoRequired: 403,
    domain.NotConnected: 409,
    domain.ConnectionFailed: 409,
    domain.ConnectorUnavailable: 503,
    domain.DecryptionFailed: 500,
    domain.ServiceUnavailable: 503,
}

DRF_CODES: dict[type[drf.APIException], str] = {
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.ParseError: "invalid",
    drf.ValidationError: "invalid",
    drf.Throttled: "rate_limit_exceeded",
}

BEARER_CHALLENGE = 'Bearer realm="api"'


class DomainAPIException(drf.APIException):
    """Carry a twig_auth domain error through DRF (which only catches ``APIException`` in authenticators)."""

    def __init__(self, error: domain.TwigAuthError) -> None:
        self.error = error
        self.status_code = _status_of(error)
        super().__init__(error.detail, error.code)


def _status_of(error: domain.TwigAuthError) -> int:
    return next((s for cls, s in DOMAIN_STATUS.items() if isinstance(error, cls)), 400)


def field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested validation detail into ``{"field.sub": ["message", ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and prefix:
                name = prefix  # a nested serializer's own error ("Expected a list") belongs to the field
            out.update(field_errors(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(v, dict | list) for v in detail):
            out[prefix or "non_field_errors"] = [str(v) for v in detail]
        else:
            for index, value in enumerate(detail):
                out.update(field_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def invalid_response(errors: dict[str, list[str]], detail: str | None = None) -> Response:
    fields = ", ".join(sorted(errors))
    return Response({"detail": detail or f"Invalid input: {fields}.", "code": "invalid", "errors": errors},
                    status=400)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map DRF, Django and twig_auth errors to the contract's JSON shape; anything else is a JSON 500."""
    if isinstance(exc, DomainAPIException):
        exc = exc.error
    if isinstance(exc, domain.TwigAuthError):
        return _domain_response(exc)
    if isinstance(exc, RequestDataTooBig):
        # Django answers 400 to these outside DRF; inside, they would otherwise become a 500.
        return invalid_response({"non_field_errors": ["The request body is too large."]},
                                "The request body is too large.")
    if isinstance(exc, SuspiciousOperation):
        logger.warning("Suspicious API request: %s", exc)
        return invalid_response({"non_field_errors": ["The request was malformed."]}, "The request was malformed.")
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, drf.ValidationError):
        return invalid_response(field_errors(exc.detail))
    if isinstance(exc, drf.ParseError):
        # A body that is not JSON has no fields; the 400 still carries ``errors`` like every ``invalid``.
        return invalid_response({"non_field_errors": [str(exc.detail)]}, str(exc.detail))
    if isinstance(exc, drf.APIException):
        return _api_exception_response(exc)
    if unavailable.is_database_unavailable(exc):  # an outage, not a bug: 503 with Retry-After, one warning
        response = _domain_response(unavailable.service_unavailable(exc, context.get("view").__class__.__name__))
        response._has_been_logged = True  # type: ignore[attr-defined]  # no django.request error line per request
        return response
    logger.exception("Unhandled API error in %s", context.get("view").__class__.__name__)
    return Response({"detail": "A server error occurred.", "code": "server_error"},
                    status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _domain_response(exc: domain.TwigAuthError) -> Response:
    if isinstance(exc, domain.InvalidInput):
        return invalid_response(exc.errors, None if exc.detail == exc.default_detail else exc.detail)
    status_code = _status_of(exc)
    if status_code >= 500 and not isinstance(exc, domain.ServiceUnavailable):
        logger.error("API request failed: %s (%s)", exc.detail, exc.code)
    body: dict[str, Any] = {"detail": exc.detail, "code": exc.code}
    body.update({k: v for k, v in exc.extra.items() if isinstance(v, str | int | list | bool)})
    response = Response(body, status=status_code)
    if isinstance(exc, domain.AccountLocked | domain.MfaThrottled | domain.ServiceUnavailable):
        response["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, domain.RateLimited):
        for name, value in exc.headers.items():
            response[name] = value
    if status_code == 401:
        response["WWW-Authenticate"] = BEARER_CHALLENGE
    return response


def _api_exception_response(exc: drf.APIException) -> Response:
    code = getattr(exc, "twig_code", None) or DRF_CODES.get(type(exc))
    if code is None:
        code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), None)
    if code is None:
        code = exc.default_code if isinstance(exc.default_code, str) else "error"
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    body: dict[str, Any] = {"detail": str(detail), "code": code}
    body.update(getattr(exc, "extra", {}) or {})
    status_code = exc.status_code
    headers: dict[str, str] = {}
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        status_code = 401
        headers["WWW-Authenticate"] = BEARER_CHALLENGE
    if isinstance(exc, drf.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait) + (exc.wait % 1 > 0))
    return Response(body, status=status_code, headers=headers)
