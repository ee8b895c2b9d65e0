"""/api/schema (OpenAPI) and /api/docs (Swagger UI served from our own static files)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

CONTRACT_OPERATIONS = {
    ("/api/agents", "get"), ("/api/agents", "post"),
    ("/api/agents/{id}", "get"), ("/api/agents/{id}", "put"), ("/api/agents/{id}", "patch"),
    ("/api/agents/{id}", "delete"), ("/api/agents/{id}/deploy", "post"),
    ("/api/data-sources", "get"), ("/api/data-sources", "post"),
    ("/api/data-sources/{id}", "get"), ("/api/data-sources/{id}", "patch"), ("/api/data-sources/{id}", "delete"),
    ("/api/data-sources/{id}/sync", "post"), ("/api/interactions", "get"), ("/api/query", "post"),
    ("/api/chat", "post"), ("/api/org/settings", "get"), ("/api/org/settings", "patch"),
    ("/api/api-keys", "get"), ("/api/api-keys", "post"), ("/api/api-keys/{id}", "delete"),
    ("/api/api-keys/{id}/roll", "post"), ("/api/api-keys/{id}/usage", "get"),
    ("/api/auth/token", "post"), ("/api/auth/token/refresh", "post"), ("/api/auth/token/revoke", "post"),
    ("/api/auth/logout", "delete"),
    # authorization (issue 6): explain, grants, policies
    ("/api/authz/explain", "get"), ("/api/grants", "get"), ("/api/grants", "post"), ("/api/grants/{id}", "delete"),
    ("/api/policies", "get"), ("/api/policies", "post"), ("/api/policies/{id}", "get"),
    ("/api/policies/{id}", "put"), ("/api/policies/{id}", "delete"),
    # audit log (issue 10): export
    ("/api/audit-events", "get"),
}


def test_schema_lists_exactly_the_contract_operations(client):
    response = client.get("/api/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    operations = {(path, method) for path, item in schema["paths"].items() for method in item
                  if method in {"get", "post", "put", "patch", "delete"}}
    assert operations == CONTRACT_OPERATIONS
    query = schema["paths"]["/api/query"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert query["$ref"].endswith("/Query")
    assert set(schema["components"]["schemas"]["Query"]["required"]) == {"agent", "question"}


def test_docs_page_renders_without_a_cdn(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "/api/schema" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html


def test_schema_documents_the_model_setting_and_the_provider_errors(client):
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    assert set(components["AgentModel"]["properties"]) == {"provider", "name", "key"}
    assert components["AgentModel"]["required"] == ["provider"]
    model = components["Agent"]["properties"]["model"]
    assert model.get("$ref", "").endswith("/AgentModel") or model["allOf"][0]["$ref"].endswith("/AgentModel")
    assert set(components["InteractionModel"]["properties"]) == {"provider", "name", "paid_by", "key"}
    assert "model" in components["Interaction"]["required"]
    for path in ("/api/query", "/api/chat"):
        responses = schema["paths"][path]["post"]["responses"]
        assert {"200", "409", "502", "503", "504"} <= set(responses)
        assert "provider_key_missing" in responses["409"]["description"]
