"""The audit log: contract fields, append-only, and no secret in a record or a log line."""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import PASSWORD
from twig_auth.audit.events import Event
from twig_auth.audit.models import AppendOnlyError, AuditEvent
from twig_auth.audit.services import record
from twig_auth.core.context import RequestContext
from twig_auth.core.logging import RedactSecretsFilter, redact_text


def test_record_has_the_contract_fields(org, owner):
    ctx = RequestContext(actor=owner.user, ip="2001:db8::1", user_agent="UA/1", session_id="s1", mfa_used=True)
    event = record(Event.ROLE_CHANGED, context=ctx, org=org, target=owner, details={"to": "admin"})
    data = event.as_record()
    assert set(data) == {"timestamp", "event", "userId", "email", "ipAddress", "userAgent", "mfaUsed",
                         "sessionId", "org", "target", "details"}
    assert data["event"] == "ROLE_CHANGED" and data["userId"] == str(owner.user_id)
    assert data["email"] == "owner@acme.test" and data["ipAddress"] == "2001:db8::1"
    assert data["mfaUsed"] is True and data["sessionId"] == "s1" and data["userAgent"] == "UA/1"
    assert data["target"]["type"] == "twig_auth.membership" and data["target"]["id"] == str(owner.pk)


def test_events_cannot_be_changed_or_deleted(org):
    event = record(Event.LOGOUT, org=org)
    event.event = "LOGIN_SUCCESS"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(event="X")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).event == "LOGOUT"


def test_secret_looking_details_are_redacted(db):
    event = record(Event.LOGIN_FAILURE, details={"password": "hunter2", "nested": {"api_key": "k"},
                                                 "note": "Authorization: Bearer abc.def.ghi",
                                                 "key": "twigsk_live_abcDEF123"})
    text = json.dumps(event.details)
    for secret in ("hunter2", "abc.def.ghi", "twigsk_live_abcDEF123"):
        assert secret not in text
    assert event.details["password"] == "[redacted]"


def test_redaction_filter_masks_log_lines():
    record_ = logging.LogRecord("x", logging.INFO, __file__, 1, "login password=%s token: abc", ("hunter2",), None)
    RedactSecretsFilter().filter(record_)
    assert "hunter2" not in record_.getMessage() and "abc" not in record_.getMessage()
    assert redact_text('{"password": "p@ss", "user": "ann"}') == '{"password": [redacted], "user": "ann"}'


def test_provider_keys_and_vault_tokens_are_redacted_wherever_they_appear():
    line = ("calling openai with sk-proj-Abc123def456GHI789 then anthropic sk-ant-api03-ZZZ_yyy-000111222 "
            "stored tv1.2.q9Jc_x-AAAAAAAAAAAAAAAAAAAA done; mask sk-…abcd stays")
    assert redact_text(line) == ("calling openai with [redacted] then anthropic [redacted] stored [redacted] done; "
                                 "mask sk-…abcd stays")


@pytest.mark.django_db
def test_no_password_reaches_an_audit_record_or_a_log_line(client, make_user, caplog):
    make_user("ann@example.test")
    wrong = "Wrong-But-Secret-77!"
    caplog.set_level(logging.DEBUG)
    for _ in range(6):
        client.post("/login/", {"email": "ann@example.test", "password": wrong})
    client.post("/login/", {"email": "nobody@example.test", "password": PASSWORD})
    from twig_auth.passwords.services import unlock

    unlock(email="ann@example.test")
    client.post("/login/", {"email": "ann@example.test", "password": PASSWORD})
    client.post("/password/change/", {"old_password": PASSWORD, "new_password1": "New-Secret-Pass-42!",
                                      "new_password2": "New-Secret-Pass-42!"})
    events = AuditEvent.objects.all()
    assert {"LOGIN_FAILURE", "ACCOUNT_LOCKED", "LOGIN_SUCCESS", "PASSWORD_CHANGED"} <= {e.event for e in events}
    dump = json.dumps([e.as_record() for e in events]) + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (wrong, PASSWORD, "New-Secret-Pass-42!"):
        assert secret not in dump
    assert caplog.records, "the flow logs something, so the check above is meaningful"
