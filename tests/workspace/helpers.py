"""Helpers shared by the reference API tests."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client


class JsonClient:
    """A Django test client signed in as one member, speaking JSON."""

    def __init__(self, client: Client, membership: Any = None) -> None:
        self.client = client
        self.membership = membership

    def _send(self, method: str, path: str, data: Any = None, raw: str | bytes | None = None, **extra: Any) -> Any:
        kwargs: dict[str, Any] = {"content_type": extra.pop("content_type", "application/json")}
        if raw is not None:
            kwargs["data"] = raw
        elif data is not None:
            kwargs["data"] = json.dumps(data)
        return getattr(self.client, method)(path, **kwargs, **extra)

    def get(self, path: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        return self.client.get(path, params or {}, **extra)

    def post(self, path: str, data: Any = None, **kw: Any) -> Any:
        return self._send("post", path, data, **kw)

    def put(self, path: str, data: Any = None, **kw: Any) -> Any:
        return self._send("put", path, data, **kw)

    def patch(self, path: str, data: Any = None, **kw: Any) -> Any:
        return self._send("patch", path, data, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self._send("delete", path, **kw)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the contract's error shape and return the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body
