"""drf-spectacular extensions describing twig_auth's authentication classes and error answers in the OpenAPI
schema.

Import this module once (for example from your API's ``urls.py``) so drf-spectacular registers the
authentication schemes, and set ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` to :class:`TwigAutoSchema` so every
operation documents the errors it can answer.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class TwigSessionScheme(SessionScheme):
    """twig_auth's session authentication (a subclass, which drf-spectacular does not match itself)."""

    target_class = "twig_auth.contrib.rest_framework.authentication.SessionAuthentication"
    priority = 0


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer twigsk_live_…``."""

    target_class = "twig_auth.contrib.rest_framework.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "twigsk_live_… / twigsk_test_… API key",
                "description": "An API key from Settings → API Keys; scopes read, write, execute, admin."}


class AccessTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <access token>`` from ``POST /api/auth/token``."""

    target_class = "twig_auth.contrib.rest_framework.authentication.JwtAuthentication"
    name = "accessToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A short-lived access token from POST /api/auth/token (renew it with "
                               "POST /api/auth/refresh)."}


# --- error answers ----------------------------------------------------------------------------------------

ERROR = inline_serializer("Error", fields={
    "detail": serializers.CharField(help_text="One human sentence."),
    "code": serializers.CharField(help_text="A stable machine code (docs/errors.md)."),
    "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                    help_text="400 invalid: each bad field (dotted path) and its messages."),
})

ERROR_DESCRIPTIONS = {
    "400": "invalid: malformed input; `errors` names each bad field.",
    "401": "not_authenticated, invalid_api_key, environment_mismatch, invalid_token, token_expired, token_reused, "
           "invalid_credentials or mfa_required (`step_up: true` when a recent second factor is needed); with "
           "`WWW-Authenticate: Bearer`.",
    "403": "permission_denied, insufficient_scope (`required_scope`), ip_not_allowed, mfa_enrollment_required, "
           "account_locked (`Retry-After`) or sso_required.",
    "404": "not_found: no such object in your organization (or one you may not see).",
    "415": "unsupported_media_type: send the body as application/json.",
    "429": "rate_limit_exceeded: the bucket is empty; retry after `Retry-After` seconds.",
    "503": "service_unavailable: the database is unreachable for now; retry after `Retry-After` seconds.",
}


class TwigAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the error answers every operation can give, in the contract's shape
    (``{"detail", "code", ...}``): 401/403/429 for authenticated views, 400 and 415 where a body or query
    parameters are read, 404 where the path names an object, 503 when the database is unreachable; and
    ``allowEmptyValue`` on optional query parameters (an empty one is read as absent). Set
    ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` to it, or subclass it.

    A view adds statuses of its own with ``extra_error_statuses`` (``{"503": "what else it means"}``; an empty
    description: the generic one), or documents an error itself with ``@extend_schema(responses=...)``, which
    wins."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for status_code, description in self.error_statuses().items():
            if status_code not in responses:
                responses[status_code] = self._get_response_for_code(
                    OpenApiResponse(ERROR, description=description), status_code, direction=direction)
        return dict(sorted(responses.items()))

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter.get("in") == "query" and not parameter.get("required"):
                # An optional filter sent empty (?kind=) is read as absent, as DRF reads form input.
                parameter["allowEmptyValue"] = True
        return parameters

    def error_statuses(self) -> dict[str, str]:
        """Status -> description of the errors this operation can answer."""
        statuses = {"503"}
        if getattr(self.view, "authentication_classes", None):
            statuses |= {"401", "403", "429"}
        elif getattr(self.view, "throttle_group", None):  # the anonymous token views: throttled per IP
            statuses.add("429")
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            statuses |= {"400", "415"}
        if any(p.get("in") == "query" for p in self._get_parameters()):
            statuses.add("400")
        if "{" in self.path:
            statuses.add("404")
        extra: dict[str, str] = getattr(self.view, "extra_error_statuses", {})
        out = {}
        for code in sorted(statuses | set(extra)):
            parts = [ERROR_DESCRIPTIONS.get(code, "") if code in statuses else "", extra.get(code, "")]
            out[code] = " Or ".join(p for p in parts if p) or ERROR_DESCRIPTIONS[code]
        return out


# --- the org settings document ----------------------------------------------------------------------------

RATE_PATTERN = r"^\s*\d+\s*/\s*\d*\s*[smhd]\s*$"


def _checker_schema(check: Any) -> dict[str, Any]:
    """The JSON schema of one checker of :data:`twig_auth.orgs.policy.SCHEMA` ({} for one it does not know)."""
    from twig_auth.orgs import policy

    bounds = getattr(check, "bounds", None)
    if bounds is not None:
        return {"type": "integer", "minimum": bounds[0], "maximum": bounds[1]}
    known: dict[Any, dict[str, Any]] = {
        policy._bool: {"type": "boolean"},
        policy._cidrs: {"type": "array", "maxItems": 500,
                        "items": {"type": "string", "description": 'A CIDR range such as "192.168.1.0/24".'}},
        policy._domains: {"type": "array", "items": {"type": "string", "maxLength": 253}},
        policy._rate: {"type": "string", "pattern": RATE_PATTERN, "description": 'A rate such as "500/m".'},
        policy._tz: {"type": "string", "minLength": 1, "maxLength": 64,
                     "description": 'A time zone name such as "Europe/Berlin".'},
        getattr(policy, "_days_or_off", None): {"type": "integer", "minimum": 0, "maximum": 3650, "nullable": True,
                                                "description": "Days; 0 or null: off."},
    }
    return dict(known.get(check, {}))


def org_settings_schema(*, complete: bool) -> dict[str, Any]:
    """JSON schema of the org settings document, from the validator's own table: ``complete`` for the
    effective document (every key present), else a PATCH (any subset; unknown keys are refused)."""
    from twig_auth.orgs import policy

    properties: dict[str, Any] = {}
    for key, spec in policy.SCHEMA.items():
        if isinstance(spec, dict):
            section: dict[str, Any] = {"type": "object", "properties": {k: _checker_schema(c) for k, c in spec.items()}}
            if complete:
                section["required"] = sorted(spec)
            else:
                section["additionalProperties"] = False
            properties[key] = section
        else:
            properties[key] = _checker_schema(spec)
    document: dict[str, Any] = {"type": "object", "properties": properties}
    if complete:  # what every effective document holds: the defaults' keys
        defaults = policy.defaults()
        document["required"] = sorted(k for k in properties if k in defaults)
        for key, section in properties.items():
            if "required" in section:
                section["required"] = sorted(k for k in section["required"] if k in (defaults.get(key) or {}))
    else:
        document["additionalProperties"] = False
    return document


class OrgSettingsDocument(serializers.Serializer):  # type: ignore[type-arg]
    """The org settings document (``twig_auth.orgs.policy``) in ``extend_schema``: ``OrgSettings`` as a response,
    ``PatchedOrgSettings`` as a PATCH body; described by :class:`OrgSettingsDocumentScheme`."""


class OrgSettingsDocumentScheme(OpenApiSerializerExtension):
    target_class = "twig_auth.contrib.rest_framework.schema.OrgSettingsDocument"

    def get_name(self, auto_schema: Any, direction: Any) -> str:
        return "OrgSettings"  # drf-spectacular names the PATCH body "PatchedOrgSettings"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return org_settings_schema(complete=direction == "response")
