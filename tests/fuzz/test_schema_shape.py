"""What the fuzzing found wrong in /api/schema, kept right: every operation documents its error answers, the
token endpoints document what they answer (not their request), the org settings document is the validator's.

And the fuzzing harness itself can fail: a server error, an error body without ``detail``/``code`` and an
undocumented status are each reported.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.response import Response

from twig_auth.orgs import policy
from twig_project.workspace import views

from .test_schema_fuzz import MODES, fuzz_operation

pytestmark = pytest.mark.django_db

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def openapi(client: Any) -> dict[str, Any]:
    response = client.get("/api/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in openapi["paths"].items() for method, op in item.items()
            if method in METHODS]


def _is_error(response: dict[str, Any]) -> bool:
    ref = response["content"]["application/json"]["schema"].get("$ref", "")
    return ref.endswith(("/Error", "/ProviderError"))


def test_every_operation_documents_its_error_answers(openapi):
    assert set(openapi["components"]["schemas"]["Error"]["required"]) == {"detail", "code"}
    for path, method, op in _operations(openapi):
        responses = op["responses"]
        authenticated = op.get("security") != [{}]
        expected = {"503"} | ({"401", "403", "429"} if authenticated else {"429"})
        if "requestBody" in op:
            expected |= {"400", "415"}
        if any(p["in"] == "query" for p in op.get("parameters", [])):
            expected.add("400")
        if "{" in path:
            expected.add("404")
        assert expected <= set(responses), (method, path, sorted(responses))
        for status, response in responses.items():
            if status >= "400":
                assert _is_error(response), (method, path, status)
                assert response["description"], (method, path, status)


def test_optional_query_parameters_may_be_empty(openapi):
    """?kind=&limit= is read as if absent (DRF's form-input reading); the schema says so."""
    parameters = {p["name"]: p for p in openapi["paths"]["/api/interactions"]["get"]["parameters"]}
    assert parameters["kind"]["allowEmptyValue"] is True and parameters["limit"]["allowEmptyValue"] is True
    required = {p["name"]: p for p in openapi["paths"]["/api/authz/explain"]["get"]["parameters"]}["member"]
    assert required["required"] is True and "allowEmptyValue" not in required


def test_token_endpoints_document_their_answers_not_their_requests(openapi):
    pair = "#/components/schemas/TokenPair"
    for path in ("/api/auth/token", "/api/auth/token/refresh"):
        ok = openapi["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": pair}, path
    assert set(openapi["components"]["schemas"]["TokenPair"]["required"]) == {
        "access_token", "refresh_token", "token_type", "expires_in"}
    obtain = openapi["paths"]["/api/auth/token"]["post"]["responses"]
    assert {"401", "403"} <= set(obtain) and "invalid_credentials" in obtain["401"]["description"]
    assert "401" in openapi["paths"]["/api/auth/token/refresh"]["post"]["responses"]
    revoked = openapi["paths"]["/api/auth/token/revoke"]["post"]["responses"]["200"]
    assert revoked["content"]["application/json"]["schema"] == {"type": "object", "maxProperties": 0}


def test_org_settings_schema_is_the_validators_table(openapi):
    components = openapi["components"]["schemas"]
    document, patch = components["OrgSettings"], components["PatchedOrgSettings"]
    assert set(document["properties"]) == set(patch["properties"]) == set(policy.SCHEMA)
    assert patch["additionalProperties"] is False
    for key, spec in policy.SCHEMA.items():
        if isinstance(spec, dict):
            assert set(patch["properties"][key]["properties"]) == set(spec), key
            assert patch["properties"][key]["additionalProperties"] is False
    timeout = patch["properties"]["session"]["properties"]["timeout"]
    assert (timeout["type"], timeout["minimum"], timeout["maximum"]) == ("integer", 300, 86400 * 90)
    assert patch["properties"]["ipAllowlist"]["type"] == "array"
    assert set(document["required"]) >= {"session", "mfa", "lockout", "ipAllowlist", "sso", "timezone"}


def test_policy_input_names_the_policy_fields(openapi):
    components = openapi["components"]["schemas"]
    assert set(components["PolicyDocument"]["required"]) == {"resource", "action", "effect"}


# --- the harness can fail ----------------------------------------------------------------------------------


def _fuzz_one(schema: Any, wsgi_app: Any, seed: Any, method: str, path: str) -> None:
    _, errors = wsgi_app
    for mode in MODES:
        fuzz_operation(schema[path][method], mode, errors, seed, {"Authorization": f"Bearer {seed.admin_key}"}, {})


@pytest.mark.parametrize("answer, reported", [
    (lambda self, request: 1 / 0, "Server error"),
    (lambda self, request: Response({"oops": True}, status=400), "contract's shape"),
    (lambda self, request: Response({"detail": "Teapot.", "code": "teapot"}, status=418), "Undocumented"),
])
def test_the_fuzzer_reports_what_breaks_the_contract(schema, wsgi_app, seed, monkeypatch, answer, reported):
    monkeypatch.setattr(views.AgentListView, "get", answer)
    with pytest.raises(AssertionError, match=reported):
        _fuzz_one(schema, wsgi_app, seed, "GET", "/api/agents")
