"""The login page: lockout message and status, per-IP throttle, org choice, logout."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from twig_auth.audit.models import AuditEvent
from twig_auth.orgs import services as org_services


def test_locked_account_answers_403_with_retry_after_and_a_readable_message(client, make_user):
    make_user("ann@example.test")
    for _ in range(5):
        response = client.post("/login/", {"email": "ann@example.test", "password": "Wrong-Pass-1!"})
        assert response.status_code == 200
        assert "Invalid email or password." in response.content.decode()
    response = client.post("/login/", {"email": "ann@example.test", "password": PASSWORD})
    assert response.status_code == 403
    assert response["Retry-After"] == "900"
    assert "Too many failed sign-in attempts. Try again in 15 minutes." in response.content.decode()


def test_per_ip_throttle_trips_with_a_friendly_message(client, settings, make_user):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "LOGIN_IP_RATE": "3/h"}  # hourly: no refill mid-test
    for i in range(3):
        response = client.post("/login/", {"email": f"x{i}@example.test", "password": "Wrong-Pass-1!"})
        assert response.status_code == 200
    response = client.post("/login/", {"email": "y@example.test", "password": "Wrong-Pass-1!"})
    assert response.status_code == 429
    wait = int(response["Retry-After"])
    assert 1000 <= wait <= 1200  # one token of 3/h comes back after 20 minutes
    assert "Too many sign-in attempts. Try again in 20 minutes." in response.content.decode()
    assert 'value="y@example.test"' in response.content.decode(), "the typed email is kept"
    assert AuditEvent.objects.filter(email="y@example.test").count() == 0, "throttled before any work"


def test_login_with_one_org_makes_it_active_and_records_the_event(client, org, make_member):
    member = make_member(org, "manager", email="mia@acme.test")
    response = client.post("/login/", {"email": "MIA@acme.test", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session["twig_org_id"] == org.pk
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.user_id == member.user_id and event.org_id == org.pk and event.mfa_used is False
    assert event.ip_address == "127.0.0.1"


def test_login_with_several_orgs_asks_which_one_then_switches(client, make_org, make_user):
    user = make_user("multi@example.test")
    a, b = make_org("alpha"), make_org("beta")
    org_services.add_member(org=a, user=user)
    org_services.add_member(org=b, user=user, role="admin")
    response = client.post("/login/", {"email": "multi@example.test", "password": PASSWORD, "next": "/"})
    assert response.status_code == 302 and response["Location"].startswith("/organizations/choose/")
    page = client.get(response["Location"])
    assert b"Alpha" in page.content and b"Beta" in page.content
    response = client.post("/organizations/choose/", {"org": b.pk, "next": "/"})
    assert response.status_code == 302 and client.session["twig_org_id"] == b.pk
    assert AuditEvent.objects.filter(event="ORG_SWITCHED", org=b).exists()


def test_switching_to_an_org_you_do_not_belong_to_is_refused(client, make_org, make_user, logged_in):
    user = make_user()
    mine, theirs = make_org("mine"), make_org("theirs")
    org_services.add_member(org=mine, user=user)
    logged_in(user)
    for bogus in (theirs.pk, "abc", "", "1 OR 1=1", "9" * 40):
        response = client.post("/organizations/choose/", {"org": bogus})
        assert response.status_code == 403
    assert client.session.get("twig_org_id") in (None, mine.pk)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_next_never_leaves_the_site(client, make_user, target):
    make_user("ann@example.test")
    response = client.post("/login/", {"email": "ann@example.test", "password": PASSWORD, "next": target})
    assert response.status_code == 302 and response["Location"] == "/"


def test_logout_is_a_post_that_ends_the_session_and_is_audited(client, org, make_member, logged_in):
    member = make_member(org)
    logged_in(member.user)
    assert client.get("/").status_code == 200
    assert client.get("/logout/").status_code == 200, "GET only asks for confirmation"
    assert client.get("/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(event="LOGOUT", user=member.user).count() == 1


@pytest.mark.parametrize("data", [
    {}, {"email": "", "password": ""}, {"email": "a" * 10000 + "@x.test", "password": "x"},
    {"email": "ann@example.test\x00", "password": "x"}, {"email": "ann@example.test", "password": "x\x00y"},
    {"email": "' OR 1=1 --", "password": "' OR 1=1 --"}, {"email": "<script>alert(1)</script>", "password": "p"},
    {"email": "ann@example.test", "password": "p" * 100000}, {"email": ["a", "b"], "password": ["c"]},
])
def test_hostile_input_gets_a_form_error_never_a_500(client, make_user, data):
    make_user("ann@example.test")
    response = client.post("/login/", data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<script>alert(1)</script>" not in body
    assert response.context["form"].errors, "the page names what is wrong"
