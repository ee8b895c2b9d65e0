"""The twig_session cookie: a signed JWT naming a revocable record; expiry, renewal, policy, logout."""

from __future__ import annotations

import base64
import datetime as dt
import json

import jwt
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import PASSWORD
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.orgs import services as org_services
from twig_auth.usersessions import cookie
from twig_auth.usersessions.models import UserSession

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def sign_in(email: str, ip: str = "127.0.0.1", agent: str = "Mozilla/5.0 (Macintosh) Chrome/156") -> Client:
    client = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
    response = client.post("/login/", {"email": email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]
    return client


def raw_cookie(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def member(org, make_member):
    return make_member(org, "user", email="mia@acme.test")


def test_the_cookie_is_an_hs256_jwt_naming_a_server_record_with_the_contract_flags(member):
    client = sign_in("mia@acme.test")
    morsel = client.cookies["twig_session"]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and not morsel["secure"]
    header = jwt.get_unverified_header(morsel.value)
    claims = jwt.decode(morsel.value, options={"verify_signature": False})
    assert header["alg"] == "HS256" and header["kid"]
    row = UserSession.objects.get(pk=claims["sid"])
    assert row.user_id == member.user_id and row.org_id == member.org_id
    assert row.ip == "127.0.0.1" and row.device_label == "Chrome on macOS"
    assert claims["exp"] - claims["iat"] == 604800
    assert client.get("/").status_code == 200


def test_the_cookie_is_secure_over_https(member):
    client = Client()
    response = client.post("/login/", {"email": "mia@acme.test", "password": PASSWORD}, secure=True)
    assert response.cookies["twig_session"]["secure"]


@pytest.mark.parametrize("forge", ["none", "wrong_key", "tampered", "expired", "rs256", "garbage"])
def test_forged_cookies_are_no_session(member, forge):
    client = sign_in("mia@acme.test")
    value = raw_cookie(client)
    claims = jwt.decode(value, options={"verify_signature": False})
    kid = jwt.get_unverified_header(value)["kid"]
    if forge == "none":
        bad = jwt.encode(claims, None, algorithm="none")
    elif forge == "wrong_key":
        bad = jwt.encode(claims, "another-secret-of-enough-length-123", algorithm="HS256", headers={"kid": kid})
    elif forge == "tampered":
        head, body, sig = value.split(".")
        bad = ".".join([head, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], sig])
    elif forge == "expired":
        bad = jwt.encode({**claims, "exp": claims["iat"] - 1}, settings.SECRET_KEY, algorithm="HS256",
                         headers={"kid": kid})
    elif forge == "rs256":  # the same token claiming RS256: an HS/RS confusion attempt
        head = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": kid, "typ": "JWT"}).encode())
        bad = head.decode().rstrip("=") + "." + ".".join(value.split(".")[1:])
    else:
        bad = "not-a-jwt"
    thief = Client()
    thief.cookies[settings.SESSION_COOKIE_NAME] = bad
    assert thief.get("/").status_code == 302, f"{forge} cookie must not authenticate"


def test_old_signing_keys_verify_and_the_first_signs(member, settings):
    client = sign_in("mia@acme.test")
    old = raw_cookie(client)
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "SESSION_SIGNING_KEYS": ["new-signing-key-0123456789abcdef",
                                                                         settings.SECRET_KEY]}
    assert client.get("/").status_code == 200, "a cookie signed with the old key still works"
    assert cookie.read(old)[0] is not None
    fresh = Client()
    fresh.post("/login/", {"email": "mia@acme.test", "password": PASSWORD})
    new_kid = cookie.signing.kid_of("new-signing-key-0123456789abcdef")
    assert jwt.get_unverified_header(raw_cookie(fresh))["kid"] == new_kid


def test_logout_revokes_the_record_so_a_copied_cookie_is_refused(member):
    client = sign_in("mia@acme.test")
    stolen = raw_cookie(client)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response.cookies["twig_session"].value == ""
    thief = Client()
    thief.cookies[settings.SESSION_COOKIE_NAME] = stolen
    assert thief.get("/").status_code == 302
    sid = cookie.read(stolen)[0]
    assert UserSession.objects.get(pk=sid).revoked_at is not None


def test_api_logout_answers_204_clears_the_cookie_and_revokes(member):
    client = sign_in("mia@acme.test")
    stolen = raw_cookie(client)
    client_csrf = Client(enforce_csrf_checks=False)
    client_csrf.cookies = client.cookies
    response = client_csrf.delete("/api/auth/logout")
    assert response.status_code == 204
    assert response.cookies["twig_session"].value == ""
    thief = Client()
    thief.cookies[settings.SESSION_COOKIE_NAME] = stolen
    assert thief.get("/api/agents").status_code == 401
    assert AuditEvent.objects.filter(event="LOGOUT", user=member.user).count() == 1


def test_idle_expiry_and_sliding_renewal_with_a_moved_clock(member):
    with clock.frozen(T0) as now:
        client = sign_in("mia@acme.test")
        first = raw_cookie(client)
        now.advance(days=6, hours=22)
        assert client.get("/").status_code == 200
        assert raw_cookie(client) == first, "no re-issue while more than an hour is left"
        now.advance(hours=1, minutes=30)  # 30 minutes of cookie life left: re-issued silently
        assert client.get("/").status_code == 200
        renewed = raw_cookie(client)
        assert renewed != first and cookie.read(renewed)[1] == (now.current.timestamp() + 604800)
        now.advance(days=6)
        assert client.get("/").status_code == 200, "activity kept the session alive"
        now.advance(days=7, seconds=1)
        assert client.get("/").status_code == 302, "idle for 7 days: signed out"


def test_without_renewal_the_session_ends_at_its_timeout(org, member):
    org_services.update_org_settings(org=org, patch={"session": {"renewOnActivity": False, "timeout": 3600}})
    with clock.frozen(T0) as now:
        client = sign_in("mia@acme.test")
        now.advance(minutes=59)
        assert client.get("/").status_code == 200
        now.advance(minutes=2)
        assert client.get("/").status_code == 302


def test_activity_is_not_written_to_the_database_on_every_request(member):
    client = sign_in("mia@acme.test")
    client.get("/")
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert client.get("/").status_code == 200
    writes = [q["sql"] for q in queries if "twig_sessions" in q["sql"] and q["sql"].startswith(("UPDATE", "INSERT"))]
    reads = [q["sql"] for q in queries if "twig_sessions" in q["sql"]]
    assert writes == [] and reads == [], "the record is read from the cache and written at most every few minutes"


def test_going_over_max_concurrent_ends_the_oldest_session(org, member):
    org_services.update_org_settings(org=org, patch={"session": {"maxConcurrent": 2}})
    with clock.frozen(T0) as now:
        first = sign_in("mia@acme.test")
        now.advance(minutes=1)
        second = sign_in("mia@acme.test")
        now.advance(minutes=1)
        third = sign_in("mia@acme.test")
    assert first.get("/").status_code == 302
    assert second.get("/").status_code == 200 and third.get("/").status_code == 200
    event = AuditEvent.objects.get(event="SESSION_REVOKED")
    assert event.details["reason"] == "max_concurrent" and event.user_id == member.user_id


def test_ip_binding_ends_a_session_used_from_another_ip(org, member):
    org_services.update_org_settings(org=org, patch={"session": {"enforceIPBinding": True}})
    client = sign_in("mia@acme.test", ip="203.0.113.5")
    assert client.get("/", REMOTE_ADDR="203.0.113.5").status_code == 200
    assert client.get("/", REMOTE_ADDR="198.51.100.9").status_code == 302
    assert client.get("/", REMOTE_ADDR="203.0.113.5").status_code == 302, "the session stays ended"
    event = AuditEvent.objects.get(event="SESSION_REVOKED")
    assert event.details["reason"] == "ip_changed" and event.ip_address == "198.51.100.9"


def test_without_ip_binding_an_ip_change_is_fine(member):
    client = sign_in("mia@acme.test", ip="203.0.113.5")
    assert client.get("/", REMOTE_ADDR="198.51.100.9").status_code == 200


def test_password_change_ends_every_other_session(member):
    laptop = sign_in("mia@acme.test")
    phone = sign_in("mia@acme.test", agent="Mozilla/5.0 (iPhone) Safari/605")
    response = laptop.post("/password/change/", {"old_password": PASSWORD, "new_password1": "Brand-New-Pass-7!",
                                                 "new_password2": "Brand-New-Pass-7!"})
    assert response.status_code == 302
    assert laptop.get("/").status_code == 200, "the session that changed the password stays"
    assert phone.get("/").status_code == 302
    assert AuditEvent.objects.filter(event="SESSION_REVOKED", details__reason="password_changed").count() == 1


def test_anonymous_pages_that_need_a_session_still_work(member):
    client = Client()
    assert client.get("/login/").status_code == 200
    assert "twig_session" not in client.cookies or client.cookies["twig_session"].value == ""
