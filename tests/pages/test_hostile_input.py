"""Malformed and hostile input on every form: a field error, escaped output, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.utils.html import escape

from tests.conftest import PASSWORD
from tests.pages.conftest import HOSTILE, field_errors, text

pytestmark = pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))


def assert_safe(response: Any) -> None:
    assert response.status_code < 500
    body = text(response)
    assert "<script>alert(1)</script>" not in body
    assert "Traceback" not in body


def test_login_email(client: Any, member: Any, value: str) -> None:
    response = client.post("/login/", {"email": value, "password": PASSWORD})

    assert_safe(response)
    assert response.status_code == 200
    assert field_errors(response, "email")
    assert client.get("/").status_code == 302


def test_login_password(client: Any, member: Any, value: str) -> None:
    response = client.post("/login/", {"email": "owner@acme.test", "password": value})

    assert_safe(response)
    assert response.status_code == 200
    assert field_errors(response, "password") or "Invalid email or password." in text(response)
    assert client.get("/").status_code == 302


def test_login_next(client: Any, member: Any, value: str) -> None:
    response = client.get("/login/", {"next": value})

    assert_safe(response)
    # A relative path stays (escaped); anything else is dropped.
    kept = f'<input type="hidden" name="next" value="{escape(value)}">'
    assert kept in text(response) or '<input type="hidden" name="next" value="/">' in text(response)


def test_reset_email(client: Any, member: Any, value: str) -> None:
    response = client.post("/password/reset/", {"email": value})

    assert_safe(response)
    assert response.status_code == 200
    assert field_errors(response, "email")
    assert mail.outbox == []


def test_change_password_fields(client: Any, member: Any, logged_in: Any, value: str) -> None:
    logged_in(member)

    response = client.post("/password/change/", {"old_password": value, "new_password1": value,
                                                  "new_password2": value})

    assert_safe(response)
    assert response.status_code == 200
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_choose_org_value(client: Any, member: Any, logged_in: Any, value: str) -> None:
    logged_in(member)

    response = client.post("/organizations/choose/", {"org": value})

    assert_safe(response)
    assert response.status_code == 403
