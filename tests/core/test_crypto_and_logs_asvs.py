"""Cryptography and logging requirements of OWASP ASVS 4.0.3 (V6.2.5, V6.3, V7.1.3, V7.2.1, V7.3.1, V7.3.4) that
no other test proves; docs/security.md cites each test by name."""

from __future__ import annotations

import ast
import datetime as dt
import io
import logging
import zoneinfo
from pathlib import Path

from django.conf import settings
from django.test import Client

from twig_auth.apikeys import format as key_format
from twig_auth.apikeys.services import issue_api_key
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.logging import RedactSecretsFilter

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for package in ("twig_auth", "twig_project") for p in (ROOT / package).rglob("*.py")
                 if "migrations" not in p.parts)
# SHA-1 is allowed here only: Redis names Lua scripts by their SHA-1 (no security role).
SHA1_ALLOWED = {"twig_auth/ratelimit/bucket.py"}
WEAK_CIPHERS = {"ECB", "TripleDES", "Blowfish", "ARC4", "CAST5", "IDEA", "SEED", "PKCS1v15"}


def _calls(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
    return names


def test_secrets_come_from_the_csprng_only() -> None:
    """V6.3.1, V6.3.2: no ``random`` module and no time- or name-based UUIDs anywhere in the code; random values
    come from ``secrets``, ``os.urandom`` or Django's ``get_random_string`` (which uses ``secrets``)."""
    assert len(SOURCES) > 100
    offenders = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name in ("random", "numpy.random") for a in node.names):
                offenders.append(f"{path}: import random")
            if isinstance(node, ast.ImportFrom) and node.module in ("random", "numpy.random"):
                offenders.append(f"{path}: from random import")
        offenders += [f"{path}: {c}" for c in _calls(tree) if c in ("uuid.uuid1", "uuid.uuid3", "uuid.uuid5")]
    assert offenders == []


def test_no_weak_hash_or_cipher_mode_is_used() -> None:
    """V6.2.5: no MD5, no SHA-1 outside the allow-list above, no ECB, 3DES, Blowfish, RC4 or PKCS#1 v1.5.
    (TOTP's HMAC-SHA1 is django-otp's, as RFC 6238 and every authenticator app require.)"""
    offenders = []
    for path in SOURCES:
        relative = path.relative_to(ROOT).as_posix()
        for call in _calls(ast.parse(path.read_text(), filename=str(path))):
            if call == "hashlib.md5" or (call == "hashlib.sha1" and relative not in SHA1_ALLOWED):
                offenders.append(f"{relative}: {call}")
            if call.split(".")[-1] in WEAK_CIPHERS:
                offenders.append(f"{relative}: {call}")
    assert offenders == []


def test_a_log_record_stays_one_line_whatever_a_request_carries() -> None:
    """V7.3.1: line breaks and control characters from a request (here a path) are escaped by the filter the
    reference settings attach to every handler, so nobody can forge a log line."""
    for handler in settings.LOGGING["handlers"].values():
        assert "redact" in handler.get("filters", [])
    assert settings.LOGGING["filters"]["redact"]["()"] == "twig_auth.core.logging.RedactSecretsFilter"

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("twig_auth.tests.asvs")
    logger.addHandler(handler)
    try:
        path = "/api/agents\r\n2026-11-23 INFO audit LOGIN_SUCCESS user=1\x1b[2K\u2028"
        logger.warning("IP %s blocked by the %s allowlist: %s %s", "203.0.113.9", "org", "GET", path)
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines == ["IP 203.0.113.9 blocked by the org allowlist: GET "
                     "/api/agents\\r\\n2026-11-23 INFO audit LOGIN_SUCCESS user=1\\x1b[2K\\u2028"]


def test_audit_times_are_stored_and_exported_in_utc(db: None) -> None:
    """V7.3.4: one clock (``twig_auth.core.clock``), aware datetimes, UTC in the database and in every record."""
    assert settings.USE_TZ and settings.TIME_ZONE == "UTC"
    new_york = dt.datetime(2026, 3, 8, 9, 30, tzinfo=zoneinfo.ZoneInfo("America/New_York"))
    with clock.frozen(new_york):
        event = record(Event.LOGOUT)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.timestamp == new_york
    assert stored.timestamp.utcoffset() == dt.timedelta(0)
    assert stored.as_record()["timestamp"] == "2026-03-08T13:30:00+00:00"


def test_refused_credentials_and_bad_input_leave_a_log_line_without_the_secret(owner, caplog) -> None:
    """V7.1.3, V7.2.1: a refused API key, a refused access token and a request that fails validation are each
    logged (the reason; Django's line with the status and path), never the secret."""
    key, good = issue_api_key(creator=owner, name="ci", scopes=["read", "write"], environment="live")
    wrong = key_format.generate("live", key_id=key.key_id).full
    client = Client()
    with caplog.at_level(logging.WARNING):
        assert client.get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {wrong}").status_code == 401
        assert client.get("/api/agents", HTTP_AUTHORIZATION="Bearer eyJhbGciOi.eyJzdWIiOi.c2ln").status_code == 401
        response = client.post("/api/agents", "{}", content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {good}")
        assert response.status_code == 400
        response = client.post("/api/agents", "{not json", content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {good}")
        assert response.status_code == 400
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("API key rejected: wrong secret (key ") for m in messages)
    assert messages.count("Unauthorized: /api/agents") == 2
    assert messages.count("Bad Request: /api/agents") == 2
    assert wrong not in caplog.text and good not in caplog.text and wrong[-30:] not in caplog.text
