"""Settings → Sessions and Settings → Security through the Django test client, with real session records."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from tests.pages.conftest import HOSTILE, field_errors, text
from twig_auth.orgs.models import Organization
from twig_auth.usersessions.models import UserSession
from twig_auth.usersessions.views import public_id

URL = "/settings/sessions/"
SECURITY = "/settings/security/"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")


def sign_in(email: str, *, agent: str = FIREFOX, ip: str = "198.51.100.1") -> Client:
    """Return a fresh client signed in through the login form (a real ``twig_session`` record)."""
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = client.post("/login/", {"email": email, "password": PASSWORD})
    assert response.status_code == 302, text(response)[:500]
    assert "twig_session" in client.cookies
    return client


def step_up(client: Client) -> Client:
    """Mark ``client``'s session as having passed a second factor just now: saving security settings needs it
    (the prompt itself is tested in tests/mfa/test_step_up.py)."""
    from twig_auth.mfa import stepup

    session = client.session
    stepup.mark_verified(session)
    session.save()
    return client


def record_key(client: Client) -> str:
    from twig_auth.usersessions import cookie

    return cookie.read(client.cookies["twig_session"].value)[0]


def is_signed_out(client: Client) -> bool:
    response = client.get(URL)
    return response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.fixture
def ann(org: Any, make_member: Any) -> Any:
    return make_member(org, "user", email="ann@acme.test")


@pytest.fixture
def admin(org: Any, make_member: Any) -> Any:
    return make_member(org, "admin", email="ada@acme.test")


@pytest.fixture
def other_org_member(make_org: Any, make_member: Any) -> Any:
    return make_member(make_org("globex"), "user", email="gus@globex.test")


# --- own sessions -------------------------------------------------------------------------------------


def test_page_requires_sign_in(client: Any, db: None) -> None:
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/settings/sessions/")


def test_list_shows_both_sessions_and_marks_the_current_one(ann: Any) -> None:
    laptop = sign_in("ann@acme.test", agent=FIREFOX, ip="198.51.100.1")
    phone = sign_in("ann@acme.test", agent=SAFARI, ip="203.0.113.9")

    response = laptop.get(URL)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = text(response)
    assert body.count('<tr class="session-row') == 2
    assert "198.51.100.1" in body and "203.0.113.9" in body
    current = re.search(r'<tr class="session-row session-row--current" data-session-id="(\w+)">', body)
    assert current and current.group(1) == public_id(record_key(laptop))
    assert body.count("This device") == 1
    assert record_key(laptop) not in body and record_key(phone) not in body  # keys never leave the server
    # the other session has a sign-out button, the current one none
    assert f'name="end" value="{public_id(record_key(phone))}"' in body
    assert f'name="end" value="{public_id(record_key(laptop))}"' not in body
    assert "Sign out all other sessions" in body


def test_ending_the_other_session_signs_that_client_out(ann: Any) -> None:
    laptop = sign_in("ann@acme.test")
    phone = sign_in("ann@acme.test", agent=SAFARI)
    assert phone.get(URL).status_code == 200
    phone_key = record_key(phone)

    response = laptop.post(URL, {"end": public_id(phone_key)}, follow=True)

    assert response.status_code == 200
    assert "Signed out" in text(response)
    assert is_signed_out(phone)
    assert laptop.get(URL).status_code == 200
    row = UserSession.objects.get(pk=phone_key)
    assert row.revoked_at is not None and row.revoke_reason == "user_ended"


def test_sign_out_all_other_sessions_keeps_the_current_one(ann: Any) -> None:
    first, second, third = (sign_in("ann@acme.test") for _ in range(3))

    response = first.post(URL, {"end": "others"}, follow=True)

    assert "Signed out of 2 other sessions." in text(response)
    assert is_signed_out(second) and is_signed_out(third)
    assert first.get(URL).status_code == 200
    assert text(first.get(URL)).count('<tr class="session-row') == 1


def test_the_current_session_cannot_be_ended_from_the_list(ann: Any) -> None:
    laptop = sign_in("ann@acme.test")

    response = laptop.post(URL, {"end": public_id(record_key(laptop))}, follow=True)

    assert "account menu" in text(response)
    assert laptop.get(URL).status_code == 200


def test_another_users_session_id_is_not_found(ann: Any, admin: Any) -> None:
    mine = sign_in("ann@acme.test")
    theirs = sign_in("ada@acme.test")

    response = mine.post(URL, {"end": public_id(record_key(theirs))}, follow=True)

    assert "already ended" in text(response)
    assert theirs.get(URL).status_code == 200


@pytest.mark.parametrize("value", [*HOSTILE.values(), "", "0" * 20, "others\x00", "all"])
def test_hostile_session_ids_never_fail(ann: Any, value: str) -> None:
    laptop = sign_in("ann@acme.test")
    other = sign_in("ann@acme.test")

    response = laptop.post(URL, {"end": value})

    assert response.status_code == 302
    assert other.get(URL).status_code == 200


def test_posting_a_record_key_does_not_end_the_session(ann: Any) -> None:
    laptop = sign_in("ann@acme.test")
    other = sign_in("ann@acme.test")

    laptop.post(URL, {"end": record_key(other)})

    assert other.get(URL).status_code == 200


# --- an admin and a member's sessions -----------------------------------------------------------------


def member_url(membership: Any) -> str:
    return f"{URL}member/{membership.pk}/"


def test_admin_sees_members_and_ends_one_session(ann: Any, admin: Any) -> None:
    a1 = sign_in("ann@acme.test")
    a2 = sign_in("ann@acme.test", agent=SAFARI)
    boss = sign_in("ada@acme.test")

    listing = text(boss.get(URL))
    assert "Members of Acme" in listing and member_url(ann) in listing
    page = boss.get(member_url(ann))
    assert page.status_code == 200
    assert text(page).count('<tr class="session-row') == 2
    assert "This device" not in text(page)

    a1_key = record_key(a1)
    response = boss.post(member_url(ann), {"end": public_id(a1_key)}, follow=True)

    assert "Ended the session" in text(response)
    assert is_signed_out(a1)
    assert a2.get(URL).status_code == 200
    assert UserSession.objects.get(pk=a1_key).revoke_reason == "admin_ended"


def test_admin_ends_all_of_a_members_sessions(ann: Any, admin: Any) -> None:
    a1, a2 = sign_in("ann@acme.test"), sign_in("ann@acme.test")
    boss = sign_in("ada@acme.test")

    response = boss.post(member_url(ann), {"end": "all"}, follow=True)

    assert "Ended 2 sessions of ann@acme.test." in text(response)
    assert is_signed_out(a1) and is_signed_out(a2)
    assert boss.get(URL).status_code == 200
    assert set(UserSession.objects.filter(user=ann.user).values_list("revoke_reason", flat=True)) == {"admin_ended"}


def test_admin_ending_all_of_their_own_sessions_keeps_the_current(admin: Any) -> None:
    boss, other = sign_in("ada@acme.test"), sign_in("ada@acme.test")

    boss.post(member_url(admin), {"end": "all"})

    assert boss.get(URL).status_code == 200
    assert is_signed_out(other)


def test_non_admins_get_403(ann: Any, admin: Any, make_member: Any, org: Any) -> None:
    sign_in("ada@acme.test")
    make_member(org, "manager", email="max@acme.test")
    for email in ("ann@acme.test", "max@acme.test"):
        client = sign_in(email)
        assert client.get(member_url(admin)).status_code == 403
        assert client.post(member_url(admin), {"end": "all"}).status_code == 403
        assert "Members of" not in text(client.get(URL))
    assert UserSession.objects.filter(user=admin.user, revoked_at__isnull=True).count() == 1


def test_admin_cannot_end_a_super_admins_sessions(owner: Any, admin: Any) -> None:
    sign_in("owner@acme.test")
    boss = sign_in("ada@acme.test")

    assert boss.post(member_url(owner), {"end": "all"}).status_code == 403
    assert UserSession.objects.filter(user=owner.user, revoked_at__isnull=True).count() == 1


def test_members_of_other_orgs_are_404(admin: Any, other_org_member: Any) -> None:
    gus = sign_in("gus@globex.test")
    boss = sign_in("ada@acme.test")

    assert boss.get(member_url(other_org_member)).status_code == 404
    assert boss.post(member_url(other_org_member), {"end": "all"}).status_code == 404
    assert gus.get(URL).status_code == 200


@pytest.mark.parametrize("ident", ["0", "999999999", "9" * 40, "-1", "abc", "1%00", "%3Cscript%3E", "1.5", "١"])
def test_hostile_member_ids_are_404(admin: Any, ident: str) -> None:
    boss = sign_in("ada@acme.test")

    assert boss.get(f"{URL}member/{ident}/").status_code == 404


# --- security settings --------------------------------------------------------------------------------


def security_form(**changes: Any) -> dict[str, Any]:
    data = {"session_timeout": "7", "session_timeout_unit": "days", "session_renew": "on",
            "session_max_concurrent": "3", "lockout_max_attempts": "5", "lockout_window": "15",
            "lockout_lock": "15", "mfa_admins": "on", "mfa_grace_days": "7"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_security_page_is_for_admins(ann: Any, admin: Any, make_member: Any, org: Any) -> None:
    assert sign_in("ann@acme.test").get(SECURITY).status_code == 403
    assert sign_in("ann@acme.test").post(SECURITY, security_form(session_max_concurrent="9")).status_code == 403
    make_member(org, "manager", email="max@acme.test")
    assert sign_in("max@acme.test").get(SECURITY).status_code == 403
    org.refresh_from_db()
    assert not (org.settings or {}).get("session")

    response = sign_in("ada@acme.test").get(SECURITY)
    assert response.status_code == 200
    body = text(response)
    assert "<h1>Security settings</h1>" in body
    assert re.search(r'name="session_timeout" value="7"', body)
    assert '<option value="days" selected>' in body


def test_security_page_needs_sign_in(client: Any, db: None) -> None:
    assert client.get(SECURITY)["Location"].startswith("/login/?next=/settings/security/")


def test_saving_updates_the_org_settings(org: Any, admin: Any) -> None:
    boss = step_up(sign_in("ada@acme.test"))
    data = security_form(session_timeout="12", session_timeout_unit="hours", session_renew=None,
                         session_max_concurrent="5", session_ip_binding="on", lockout_max_attempts="8",
                         lockout_window="30", lockout_lock="60", mfa_admins=None, mfa_all="on", mfa_grace_days="14")

    response = boss.post(SECURITY, data, follow=True)

    assert response.status_code == 200
    assert "were saved" in text(response)
    settings = Organization.objects.get(pk=org.pk).settings
    assert settings["session"] == {"timeout": 43200, "renewOnActivity": False, "maxConcurrent": 5,
                                   "enforceIPBinding": True}
    assert settings["lockout"] == {"maxAttempts": 8, "windowSeconds": 1800, "lockSeconds": 3600}
    assert settings["mfa"] == {"requiredForAdmins": False, "requiredForAll": True, "gracePeriodDays": 14}
    page = text(boss.get(SECURITY))
    assert 'name="session_timeout" value="12"' in page and '<option value="hours" selected>' in page


def test_saving_unchanged_values_changes_nothing(org: Any, admin: Any) -> None:
    boss = sign_in("ada@acme.test")
    initial = re.findall(r'name="(\w+)" value="(\d+)"', text(boss.get(SECURITY)))

    response = boss.post(SECURITY, security_form(**dict(initial)), follow=True)

    assert "Nothing changed." in text(response)
    assert not (Organization.objects.get(pk=org.pk).settings or {}).get("session")


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"session_max_concurrent": "0"}, "session_max_concurrent", "Must be between 1 and 100."),
    ({"session_timeout": "2", "session_timeout_unit": "minutes"}, "session_timeout",
     "Must be between 5 minutes and 90 days."),
    ({"session_timeout": "91"}, "session_timeout", "Must be between 5 minutes and 90 days."),
    ({"lockout_max_attempts": "1000"}, "lockout_max_attempts", "Must be between 1 and 100."),
    ({"lockout_window": "0"}, "lockout_window", "Must be between 1 minute and 1 day."),
    ({"lockout_lock": "99999"}, "lockout_lock", "Must be between 1 minute and 7 days."),
    ({"mfa_grace_days": "-1"}, "mfa_grace_days", "Must be between 0 and 90."),
    ({"session_timeout": "abc"}, "session_timeout", "Enter a whole number."),
    ({"session_timeout": ""}, "session_timeout", "Enter a number."),
    ({"session_max_concurrent": "9" * 40}, "session_max_concurrent", "Enter a smaller number."),
])
def test_validation_errors_are_shown_next_to_the_field(org: Any, admin: Any, changes: dict[str, str], field: str,
                                                       message: str) -> None:
    boss = sign_in("ada@acme.test")

    response = boss.post(SECURITY, security_form(**changes))

    assert response.status_code == 200
    assert field_errors(response, field) == [message]
    assert "Please fix the problems highlighted below." in text(response)
    assert not (Organization.objects.get(pk=org.pk).settings or {}).get("session")


def test_every_bad_field_is_reported_at_once(org: Any, admin: Any) -> None:
    response = sign_in("ada@acme.test").post(SECURITY, security_form(session_max_concurrent="0", lockout_lock="0"))

    assert field_errors(response, "session_max_concurrent") and field_errors(response, "lockout_lock")
    assert re.search(r'<input[^>]*name="session_max_concurrent"[^>]*autofocus', text(response))


@pytest.mark.parametrize("value", list(HOSTILE.values()))
def test_hostile_security_input_is_refused_cleanly(org: Any, admin: Any, value: str) -> None:
    boss = sign_in("ada@acme.test")

    response = boss.post(SECURITY, security_form(session_timeout=value, session_timeout_unit=value,
                                                 lockout_window=value, session_renew=value))

    assert response.status_code == 200
    assert field_errors(response, "session_timeout")
    assert "<script>alert(1)</script>" not in text(response)
    assert not (Organization.objects.get(pk=org.pk).settings or {}).get("session")


def test_admin_signing_a_member_out_everywhere_ends_their_api_tokens(org, make_member):
    from django.test import Client

    admin = make_member(org, "admin", email="boss@acme.test")
    member = make_member(org, email="tok@acme.test")
    api = Client()
    pair = api.post("/api/auth/token", {"email": "tok@acme.test", "password": "Correct-Horse-9!"},
                    content_type="application/json").json()
    assert api.get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}").status_code == 200
    boss = Client()
    assert boss.post("/login/", {"email": admin.user.email, "password": "Correct-Horse-9!"}).status_code == 302
    response = boss.post(f"/settings/sessions/member/{member.pk}/", {"end": "all"})
    assert response.status_code == 302
    assert api.get("/api/agents", HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}").status_code == 401
    refreshed = api.post("/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]},
                         content_type="application/json")
    assert refreshed.status_code == 401
