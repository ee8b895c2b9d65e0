"""Enforce SSO: password login refused (page 403 with the SSO button, API 403 ``sso_required`` + ``sso_url``)
only after the password is verified; break-glass super admins; other orgs unaffected; lockout still counts."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import PASSWORD, oathtool
from tests.pages.conftest import text
from tests.sso.connections import enforce
from tests.tokens.conftest import assert_error, post_json
from twig_auth.audit.models import AuditEvent
from twig_auth.exceptions import InvalidInput
from twig_auth.orgs import services as org_services

TOKEN = "/api/auth/token"
WRONG = "Wrong-Horse-9!"


@pytest.fixture
def enforcing(org, owner, make_connection):
    make_connection(org)
    enforce(org)
    return org


def login(client, email, password=PASSWORD):
    return client.post("/login/", {"email": email, "password": password})


def test_a_member_with_the_right_password_gets_the_sso_page(client, enforcing, make_member):
    member = make_member(enforcing, "admin", email="ann@acme.test")
    response = login(client, "ann@acme.test")
    assert response.status_code == 403
    body = text(response)
    assert "Your organization signs in with single sign-on" in body
    assert 'href="/sso/saml/acme/login/?next=%2F"' in body and 'data-testid="sso-start"' in body
    assert "_auth_user_id" not in client.session
    [event] = AuditEvent.objects.filter(event="LOGIN_FAILURE")
    assert (event.user_id, event.org_id, event.details) == (member.user_id, enforcing.pk, {"reason": "sso_required"})
    assert not AuditEvent.objects.filter(event="LOGIN_SUCCESS").exists()


def test_a_wrong_password_reveals_nothing_and_counts_toward_the_lockout(client, enforcing, make_member, settings):
    make_member(enforcing, email="ann@acme.test")
    response = login(client, "ann@acme.test", WRONG)
    assert response.status_code == 200
    assert "single sign-on" not in text(response) and "Invalid email or password." in text(response)
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "LOGIN_ACCOUNT_RATE": "100/m"}
    statuses = [login(client, "ann@acme.test", WRONG).status_code for _ in range(10)]
    assert statuses[-1] == 403  # locked (default 5 attempts): the lockout counted every wrong password
    assert "Too many failed sign-in attempts" in text(login(client, "ann@acme.test"))
    assert AuditEvent.objects.filter(event="ACCOUNT_LOCKED").count() == 1


def test_the_api_answers_sso_required_with_the_sso_url(client, enforcing, make_member):
    make_member(enforcing, email="ann@acme.test")
    body = assert_error(post_json(client, TOKEN, {"email": "ann@acme.test", "password": PASSWORD}), 403,
                        "sso_required")
    assert body["sso_url"] == "http://testserver/sso/saml/acme/login/"
    assert_error(post_json(client, TOKEN, {"email": "ann@acme.test", "password": WRONG}), 401,
                 "invalid_credentials")


def test_break_glass_super_admin_signs_in_with_a_password_and_it_is_audited(client, enforcing, owner):
    response = login(client, "owner@acme.test")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(owner.user_id)
    [event] = AuditEvent.objects.filter(event="LOGIN_SUCCESS")
    assert event.details == {"method": "password", "breakGlass": True} and event.org_id == enforcing.pk
    assert post_json(client, TOKEN, {"email": "owner@acme.test", "password": PASSWORD}).status_code == 200
    api = AuditEvent.objects.filter(event="LOGIN_SUCCESS").order_by("-id").first()
    assert api.details == {"method": "token", "breakGlass": True}


def test_break_glass_still_asks_the_second_factor(client, enforcing, owner, totp_device):
    _, secret = totp_device(owner.user)
    assert login(client, "owner@acme.test")["Location"] == "/login/verify/"
    assert "_auth_user_id" not in client.session
    done = client.post("/login/verify/", {"code": oathtool(secret)})
    assert done.status_code == 302
    [event] = AuditEvent.objects.filter(event="LOGIN_SUCCESS")
    assert event.details["breakGlass"] is True and event.mfa_used and event.org_id == enforcing.pk
    api = post_json(client, TOKEN, {"email": "owner@acme.test", "password": PASSWORD})
    assert_error(api, 401, "mfa_required")


def test_no_break_glass_roles_means_nobody_uses_a_password(client, enforcing, owner, settings):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "SSO_BREAK_GLASS_ROLES": []}
    assert login(client, "owner@acme.test").status_code == 403
    assert_error(post_json(client, TOKEN, {"email": "owner@acme.test", "password": PASSWORD}), 403, "sso_required")


def test_orgs_that_do_not_enforce_are_unaffected(client, org, make_member, make_connection):
    make_connection(org)
    make_member(org, email="ann@acme.test")
    assert login(client, "ann@acme.test").status_code == 302
    assert post_json(Client(), TOKEN, {"email": "ann@acme.test", "password": PASSWORD}).status_code == 200


def test_a_downgraded_org_stops_enforcing(client, enforcing, make_member):
    make_member(enforcing, email="ann@acme.test")
    enforcing.plan = "free"
    enforcing.save(update_fields=["plan"])
    assert login(client, "ann@acme.test").status_code == 302


def test_several_orgs_the_org_signed_into_decides(client, enforcing, make_org, make_member):
    ann = make_member(enforcing, email="ann@acme.test").user  # the first membership: the default
    other = make_org("globex")
    org_services.add_member(org=other, user=ann, role="user")
    assert post_json(client, TOKEN, {"email": "ann@acme.test", "password": PASSWORD, "org": "globex"}
                     ).status_code == 200
    assert_error(post_json(client, TOKEN, {"email": "ann@acme.test", "password": PASSWORD, "org": "acme"}), 403,
                 "sso_required")
    assert_error(post_json(client, TOKEN, {"email": "ann@acme.test", "password": PASSWORD}), 403, "sso_required")
    assert login(client, "ann@acme.test").status_code == 403


def test_enforcing_needs_an_enabled_connection(org, owner, make_connection):
    with pytest.raises(InvalidInput) as exc:
        enforce(org)
    assert "Enable a single sign-on connection" in exc.value.errors["sso.enforce"][0]
    make_connection(org, enabled=False)
    with pytest.raises(InvalidInput):
        enforce(org)
    enforce(org, on=False)  # turning it off is always allowed


def test_the_break_glass_setting_is_validated(settings):
    from twig_auth.conf import app_settings

    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "SSO_BREAK_GLASS_ROLES": ["root"]}
    assert ("SSO_BREAK_GLASS_ROLES", "'root' is not a role; use user, manager, admin, super_admin") \
        in app_settings.errors()


@pytest.fixture
def two_orgs(enforcing, make_org, make_member):
    """ann is a user of ``acme`` (enforces SSO) and of ``beta`` (does not), whose name sorts first."""
    beta = make_org("beta", name="Beta", plan="enterprise")
    ann = make_member(beta, "user", email="ann@acme.test")
    org_services.add_member(org=enforcing, user=ann.user, role="user")
    return enforcing, beta


def test_a_password_session_cannot_switch_into_an_org_that_enforces_sso(client, two_orgs):
    acme, beta = two_orgs
    # The oldest membership (beta) does not enforce SSO: the password login is allowed there.
    assert login(client, "ann@acme.test").status_code == 302
    switched = client.post("/organizations/choose/", {"org": beta.pk})
    assert switched.status_code == 302 and client.session["twig_org_id"] == beta.pk
    refused = client.post("/organizations/choose/", {"org": acme.pk})
    assert refused.status_code == 302 and refused["Location"].startswith("/sso/saml/acme/login/")
    assert client.session["twig_org_id"] == beta.pk  # still in beta


def test_the_fallback_org_is_never_one_that_enforces_sso(client, two_orgs):
    acme, beta = two_orgs
    assert login(client, "ann@acme.test").status_code == 302
    session = client.session
    session.pop("twig_org_id", None)
    session.save()
    client.get("/settings/sessions/")
    assert client.session["twig_org_id"] == beta.pk


def test_break_glass_members_may_switch_into_the_enforcing_org(client, two_orgs):
    acme, beta = two_orgs
    from twig_auth.orgs.models import Membership

    Membership.objects.filter(org=acme, user__email="ann@acme.test").update(role="super_admin")
    assert login(client, "ann@acme.test").status_code == 302
    assert client.post("/organizations/choose/", {"org": acme.pk}).status_code == 302
    assert client.session["twig_org_id"] == acme.pk
