"""Security alerts, end to end through the real flows: failed logins (per account, per IP), a locked account, a
blocked IP and a reused refresh token mail the org's admins (Django's locmem outbox), are audited as
SECURITY_ALERT_SENT, send ``security_alert_raised``, are deduplicated per (org, kind, subject) and window, only
after commit, and never break the request when mail or a receiver fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client

from tests.apikeys.conftest import bearer as key_bearer
from tests.conftest import PASSWORD
from tests.tokens.conftest import assert_error, post_json
from twig_auth import signals
from twig_auth.alerts.models import SecurityAlert
from twig_auth.alerts.services import raise_alerts
from twig_auth.apikeys.services import issue_api_key
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import AccountLocked, InvalidCredentials
from twig_auth.netaccess import enforce
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Membership
from twig_auth.passwords.services import authenticate_password

pytestmark = pytest.mark.django_db
ATTACKER = "198.51.100.66"


@pytest.fixture(autouse=True)
def _setup(settings: Any, mailoutbox: list[Any]) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_BCRYPT_ROUNDS": 4}
    settings.ADMINS = []
    enforce.forget()


@pytest.fixture
def admin(org: Any, owner: Any, make_member: Any) -> Membership:
    return make_member(org, "admin", email="admin@acme.test")


@pytest.fixture
def bob(org: Any, owner: Any, make_member: Any) -> Membership:
    return make_member(org, "user", email="bob@acme.test")


@pytest.fixture
def raised() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    signals.security_alert_raised.connect(receiver)
    yield seen
    signals.security_alert_raised.disconnect(receiver)


@pytest.fixture
def commits(django_capture_on_commit_callbacks: Any) -> Any:
    """Run what is queued with ``on_commit`` as the test's (never committed) transaction would on commit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def fail_login(email: str, ip: str = ATTACKER, password: str = "wrong-Password-1") -> None:
    context = RequestContext(ip=ip, user_agent="curl/8")
    with pytest.raises((InvalidCredentials, AccountLocked)):
        authenticate_password(email=email, password=password, context=context)


def to(message: Any) -> list[str]:
    return list(message.to)


# --- a locked account -----------------------------------------------------------------------------------------------

def test_a_locked_account_mails_each_of_its_orgs_admins_once(org, owner, admin, bob, make_org, make_member, commits,
                                                             raised, mailoutbox):
    other = make_org("globex")
    other_admin = make_member(other, "super_admin", email="boss@globex.test")
    org_services.add_member(org=other, user=bob.user)
    gone = make_member(org, "admin", email="gone@acme.test")
    org_services.deactivate_member(membership=gone)
    with commits():
        for _ in range(5):
            fail_login("bob@acme.test")
    assert AuditEvent.objects.filter(event="ACCOUNT_LOCKED").count() == 1
    assert sorted(to(m)[0] for m in mailoutbox) == ["admin@acme.test", "boss@globex.test", "owner@acme.test"]
    assert all(len(m.to) == 1 for m in mailoutbox)  # one message per admin: no admin sees the others' addresses
    message = next(m for m in mailoutbox if to(m) == ["admin@acme.test"])
    assert message.subject == ("Security alert for Acme: An account was locked after failed sign-ins "
                               "(bob@acme.test)")
    assert "Account: bob@acme.test" in message.body and ATTACKER in message.body
    assert "Organization: Acme (acme)" in message.body and "wrong-Password-1" not in message.body
    sent = AuditEvent.objects.filter(event="SECURITY_ALERT_SENT").order_by("org_id")
    assert [(e.org_id, e.details["kind"], e.details["subject"], e.details["recipients"], e.details["delivered"])
            for e in sent] == [(org.pk, "account_locked", "bob@acme.test", 2, True),
                               (other.pk, "account_locked", "bob@acme.test", 1, True)]
    assert {(r["org"].pk, r["kind"], r["subject"]) for r in raised} == {
        (org.pk, "account_locked", "bob@acme.test"), (other.pk, "account_locked", "bob@acme.test")}
    assert sorted(raised[0]["recipients"] + raised[1]["recipients"]) == [
        "admin@acme.test", "boss@globex.test", "owner@acme.test"]
    assert other_admin.pk


def test_unknown_accounts_alert_nobody_on_their_own(org, owner, admin, commits, mailoutbox):
    with commits():
        for _ in range(6):
            fail_login("nobody@acme.test")
    assert AuditEvent.objects.filter(event="ACCOUNT_LOCKED").count() == 1
    assert mailoutbox == [] and not SecurityAlert.objects.exists()


# --- repeated failures ---------------------------------------------------------------------------------------------

def test_repeated_failures_for_one_account_alert_once_per_window(settings, org, owner, admin, bob, commits,
                                                                  mailoutbox):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "ALERT_FAILED_LOGINS_PER_ACCOUNT": 3, "ALERT_DEDUPE_SECONDS": 600}
    org_services.update_org_settings(org=org, patch={"lockout": {"maxAttempts": 50}})  # a slow guesser

    def fail(ip: str) -> None:
        with commits():
            fail_login("bob@acme.test", ip=ip)

    with clock.frozen(clock.now()) as frozen:
        fail("203.0.113.1")
        fail("203.0.113.2")
        assert mailoutbox == []
        fail("203.0.113.3")
        assert sorted(to(m)[0] for m in mailoutbox) == ["admin@acme.test", "owner@acme.test"]
        assert "Failed sign-ins in the last 60 minutes: 3" in mailoutbox[0].body
        fail("203.0.113.4")
        fail("203.0.113.5")
        assert len(mailoutbox) == 2
        row = SecurityAlert.objects.get(kind="login_failures_account")
        assert (row.org_id, row.subject, row.sent_count, row.suppressed) == (org.pk, "bob@acme.test", 1, 2)
        frozen.advance(seconds=601)
        fail("203.0.113.6")
    assert len(mailoutbox) == 4 and "Failed sign-ins in the last 60 minutes: 6" in mailoutbox[-1].body
    row.refresh_from_db()
    assert (row.sent_count, row.suppressed) == (2, 0)
    assert AuditEvent.objects.filter(event="SECURITY_ALERT_SENT").count() == 2


def test_failures_from_one_ip_alert_the_orgs_and_the_operators(settings, org, owner, admin, bob, commits,
                                                               mailoutbox, raised):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "ALERT_FAILED_LOGINS_PER_IP": 4}
    settings.ADMINS = [("Ops", "ops@twig.test")]
    for i in range(3):
        with commits():
            fail_login(f"ghost{i}@acme.test")
    assert mailoutbox == []
    with commits():
        fail_login("ghost9@acme.test")  # the 4th from this IP, for nobody's account: the operators hear
    assert [to(m) for m in mailoutbox] == [["ops@twig.test"]]
    assert "Repeated failed sign-ins from one IP address" in mailoutbox[0].subject
    assert ATTACKER in mailoutbox[0].subject
    for _ in range(2):
        with commits():
            fail_login("bob@acme.test")  # one of Acme's members now: Acme's admins hear of this IP too, once
    assert sorted(to(m)[0] for m in mailoutbox[1:]) == ["admin@acme.test", "owner@acme.test"]
    assert [(r["org"].pk if r["org"] else None, r["kind"]) for r in raised] == [
        (None, "login_failures_ip"), (org.pk, "login_failures_ip")]
    operator = AuditEvent.objects.filter(event="SECURITY_ALERT_SENT", org__isnull=True).get()
    assert operator.details["subject"] == ATTACKER and operator.details["count"] == 4


# --- blocked IPs and reused tokens ------------------------------------------------------------------------------

def test_a_blocked_ip_alerts_once_however_often_it_knocks(org, owner, admin, commits, mailoutbox):
    _, secret = issue_api_key(creator=owner, name="ci", scopes=["read"], environment="live")
    org_services.update_org_settings(org=org, patch={"ipAllowlist": ["198.51.100.0/24"]})
    client = Client()
    with commits():
        for _ in range(3):
            assert client.get("/api/agents", REMOTE_ADDR="203.0.113.9", **key_bearer(secret)).status_code == 403
    assert sorted(to(m)[0] for m in mailoutbox) == ["admin@acme.test", "owner@acme.test"]
    assert "Requests were blocked by the IP allowlist (203.0.113.9)" in mailoutbox[0].subject
    assert SecurityAlert.objects.get(kind="ip_blocked").subject == "203.0.113.9"


def test_a_reused_refresh_token_alerts_the_admins(org, owner, admin, bob, commits, mailoutbox):
    client = Client()
    pair = post_json(client, "/api/auth/token", {"email": "bob@acme.test", "password": PASSWORD}).json()
    assert post_json(client, "/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]}).status_code == 200
    with commits():
        assert_error(post_json(client, "/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]}), 401,
                     "token_reused")
    assert sorted(to(m)[0] for m in mailoutbox) == ["admin@acme.test", "owner@acme.test"]
    assert "bob@acme.test" in mailoutbox[0].subject and "refresh token" in mailoutbox[0].subject
    assert pair["refresh_token"] not in mailoutbox[0].body


# --- after commit, best effort ---------------------------------------------------------------------------------------

def test_a_rolled_back_event_never_alerts(org, owner, admin, bob, commits, mailoutbox):
    with commits(), pytest.raises(RuntimeError), transaction.atomic():
        record(Event.ACCOUNT_LOCKED, user=bob.user, email="bob@acme.test")
        raise RuntimeError("the change failed")
    assert mailoutbox == [] and not SecurityAlert.objects.exists()
    with commits():
        record(Event.ACCOUNT_LOCKED, user=bob.user, email="bob@acme.test")
    assert len(mailoutbox) == 2


def test_nothing_is_sent_before_the_transaction_commits(org, owner, admin, bob, mailoutbox):
    record(Event.ACCOUNT_LOCKED, user=bob.user, email="bob@acme.test")  # the test's transaction never commits
    assert mailoutbox == []


def test_a_failing_mail_server_is_audited_and_the_login_still_answers(settings, org, owner, admin, bob, commits):
    settings.EMAIL_BACKEND = "tests.alerts.failing_mail.EmailBackend"
    with commits():
        for _ in range(5):
            fail_login("bob@acme.test")
    sent = AuditEvent.objects.get(event="SECURITY_ALERT_SENT")
    assert sent.details["delivered"] is False and sent.details["recipients"] == 2


def test_a_broken_receiver_does_not_stop_the_alert(org, owner, admin, bob, commits, mailoutbox, raised):
    def broken(sender: Any, **kwargs: Any) -> None:
        raise ValueError("sink down")

    signals.security_alert_raised.connect(broken)
    try:
        with commits():
            record(Event.ACCOUNT_LOCKED, user=bob.user, email="bob@acme.test")
    finally:
        signals.security_alert_raised.disconnect(broken)
    assert len(mailoutbox) == 2 and len(raised) == 1


def test_alerts_can_be_switched_off(settings, org, owner, admin, bob, commits, mailoutbox):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "ALERTS_ENABLED": False}
    with commits():
        record(Event.ACCOUNT_LOCKED, user=bob.user, email="bob@acme.test")
    assert mailoutbox == [] and not SecurityAlert.objects.exists()


def test_other_events_raise_nothing_and_cost_no_query(org, owner, bob, django_assert_num_queries):
    event = record(Event.LOGIN_SUCCESS, user=bob.user, org=org)
    with django_assert_num_queries(0):
        assert raise_alerts(event) == 0


def test_an_email_subject_cannot_carry_headers(org, owner, admin, make_member, commits, mailoutbox):
    victim = make_member(org, "user", email="eve@acme.test")
    with commits():
        record(Event.ACCOUNT_LOCKED, user=victim.user, email="eve@acme.test\nBcc: all@evil.test")
    assert len(mailoutbox) == 2
    assert "\n" not in mailoutbox[0].subject and mailoutbox[0].bcc == []
    assert mail.outbox is mailoutbox


def test_token_reuse_dedupes_per_account_across_families(org, owner, admin, bob, commits, mailoutbox):
    client = Client()
    with commits():
        for _ in range(2):
            pair = post_json(client, "/api/auth/token", {"email": "bob@acme.test", "password": PASSWORD}).json()
            post_json(client, "/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]})
            post_json(client, "/api/auth/token/refresh", {"refresh_token": pair["refresh_token"]})
    assert AuditEvent.objects.filter(event="TOKEN_REUSED").count() == 2
    assert len(mailoutbox) == 2  # one alert (two admins), the second held back
    assert SecurityAlert.objects.get(kind="token_reused").suppressed == 1


def test_the_window_is_sliding_not_fixed(settings, org, owner, admin, bob, commits, mailoutbox):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "ALERT_DEDUPE_SECONDS": 3600}
    start = clock.now().replace(minute=59, second=0)

    def locked() -> None:
        with commits():
            record(Event.ACCOUNT_LOCKED, user=bob.user, email="bob@acme.test")

    with clock.frozen(start) as frozen:
        locked()
        frozen.advance(minutes=2)  # a new clock hour, but not a new window
        locked()
        assert len(mailoutbox) == 2
        frozen.advance(seconds=3600)
        locked()
    assert len(mailoutbox) == 4
    assert start + dt.timedelta(seconds=3720) == SecurityAlert.objects.get().last_sent_at


@pytest.mark.django_db(transaction=True)
def test_inside_a_request_the_alert_waits_until_the_response_is_sent(org, owner, admin, bob, mailoutbox):
    """What a WSGI server does: call the app, send the response, then close it. The failed sign-in that locks
    the account answers before any mail is sent (no timing difference between known and unknown accounts)."""
    import json

    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    for _ in range(4):
        fail_login("bob@acme.test")
    request = RequestFactory().post("/api/auth/token", json.dumps({"email": "bob@acme.test", "password": "Nope-123!"}),
                                    content_type="application/json", REMOTE_ADDR=ATTACKER)
    statuses: list[str] = []
    response = WSGIHandler()(request.environ, lambda status, headers, *a: statuses.append(status))
    body = b"".join(response)
    assert statuses == ["401 Unauthorized"] and b"invalid_credentials" in body
    assert AuditEvent.objects.filter(event="ACCOUNT_LOCKED").count() == 1
    assert mailoutbox == []  # the response is out; nothing mailed yet
    response.close()  # the server is done with it: request_finished
    assert sorted(to(m)[0] for m in mailoutbox) == ["admin@acme.test", "owner@acme.test"]
