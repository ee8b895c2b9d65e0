"""Fixtures of the token tests: JSON helpers and a token pair obtained through the endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD


def post_json(client: Client, path: str, data: Any, **extra: Any) -> Any:
    body = data if isinstance(data, str | bytes) else json.dumps(data)
    return client.post(path, body, content_type="application/json", **extra)


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.fixture
def obtain(client: Client) -> Callable[..., dict[str, Any]]:
    """``obtain(email, **extra)`` → the JSON of a successful ``POST /api/auth/token``."""

    def make(email: str = "owner@acme.test", password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
        response = post_json(client, "/api/auth/token", {"email": email, "password": password, **extra})
        assert response.status_code == 200, response.content
        return response.json()

    return make
