"""Helpers for the Django test-client tests of the server-rendered pages."""

from __future__ import annotations

import re
from typing import Any

import pytest

HOSTILE = {
    "oversized": "a" * 10_000 + "@example.test",
    "nul": "ann\x00@example.test",
    "html": "<script>alert(1)</script>@example.test",
    "sql": "' OR 1=1; DROP TABLE users; --",
    "unicode": "ユーザー\u202e@例え.テスト",
    "only_nul": "\x00",
}


def text(response: Any) -> str:
    """Return the decoded body of ``response``."""
    return response.content.decode()


def alert_text(response: Any) -> str:
    """Return the text of the form's top error alert, tags stripped and whitespace collapsed."""
    match = re.search(r'<div class="alert alert--error" role="alert" id="form-errors">(.*?)</div>', text(response),
                      re.S)
    assert match, "no form error alert on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def field_errors(response: Any, field: str) -> list[str]:
    """Return the error messages rendered next to field ``field`` (its ``id_<field>_error`` list)."""
    match = re.search(rf'<ul class="field__errors" id="id_{field}_error">(.*?)</ul>', text(response), re.S)
    if not match:
        return []
    return [" ".join(m.split()) for m in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


@pytest.fixture
def member(owner: Any) -> Any:
    """The org owner's user (owner@acme.test, member of Acme only)."""
    return owner.user
