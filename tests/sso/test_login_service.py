"""The protocol-free end of SSO logins (twig_auth.sso.login), through the real middleware, sessions and pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import oathtool
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
from twig_auth.orgs.active import SESSION_KEY
from twig_auth.orgs.models import Membership, Organization
from twig_auth.sso.login import mapped_role
from twig_auth.sso.models import SsoConnection, SsoDomain

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _urls(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.sso.sso_urls"


@pytest.fixture
def connection(org: Organization) -> SsoConnection:
    SsoDomain.objects.create(org=org, domain="acme.test", verified_at=clock.now())
    return SsoConnection.objects.create(org=org, name="Okta", protocol="saml", enabled=True,
                                        group_role_mapping={"Engineering": "manager", "IT": "admin"})


@pytest.fixture
def sso(client: Any) -> Callable[..., Any]:
    def post(connection: SsoConnection, email: str, **identity: Any) -> Any:
        return client.post(f"/test-sso/{connection.pk}/complete/", json.dumps({"email": email, **identity}),
                           content_type="application/json")

    return post


def _session_user_id(client: Any) -> str | None:
    return client.session.get("_auth_user_id")


def test_jit_user_gets_a_user_membership_and_is_signed_in(client: Any, connection: SsoConnection,
                                                            sso: Callable[..., Any]) -> None:
    response = sso(connection, "New.Person@Acme.test", first_name="New", last_name="Person", next="/account/")
    assert response.status_code == 302 and response["Location"] == "/account/"
    membership = Membership.objects.select_related("user").get(org=connection.org, user__email="new.person@acme.test")
    assert membership.role == "user"
    assert membership.user.name == "New Person"
    assert not membership.user.has_usable_password()
    assert _session_user_id(client) == str(membership.user.pk)
    assert client.session[SESSION_KEY] == connection.org.pk
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.user_id == membership.user.pk and event.org_id == connection.org.pk
    assert event.details == {"method": "sso", "protocol": "saml", "connection": connection.pk, "idpMfa": False}
    assert event.mfa_used is False
    added = AuditEvent.objects.get(event="MEMBER_ADDED", org=connection.org)
    assert added.details == {"member": "new.person@acme.test", "role": "user"}


def test_an_external_next_url_is_ignored(connection: SsoConnection, sso: Callable[..., Any]) -> None:
    response = sso(connection, "a@acme.test", next="https://evil.test/")
    assert response.status_code == 302 and response["Location"] == "/"


def test_existing_user_is_matched_by_email_case_insensitively(client: Any, connection: SsoConnection,
                                                                make_user: Callable[..., Any],
                                                                make_org: Callable[..., Organization],
                                                                make_member: Callable[..., Any],
                                                                sso: Callable[..., Any]) -> None:
    user = make_user(email="ann@acme.test")
    other = make_org("other-co")
    Membership.objects.create(org=other, user=user, role="admin", role_changed_at=clock.now())
    response = sso(connection, "ANN@ACME.TEST")
    # Member of two orgs now, yet no org chooser: the SSO org is the active one.
    assert response.status_code == 302 and response["Location"] == "/"
    assert _session_user_id(client) == str(user.pk)
    assert client.session[SESSION_KEY] == connection.org.pk
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.filter(email__iexact="ann@acme.test").count() == 1
    assert Membership.objects.get(org=connection.org, user=user).role == "user"
    assert user.check_password("Correct-Horse-9!")  # the password is left alone


def test_groups_map_to_the_highest_role_for_a_new_member(connection: SsoConnection,
                                                         sso: Callable[..., Any]) -> None:
    sso(connection, "eng@acme.test", groups=["Everyone", "Engineering"])
    sso(connection, "it@acme.test", groups=["Engineering", "IT"])
    assert Membership.objects.get(user__email="eng@acme.test").role == "manager"
    assert Membership.objects.get(user__email="it@acme.test").role == "admin"
    assert mapped_role(connection, ("Nobody",)) == "user"


def test_an_existing_members_role_is_not_changed_by_groups(connection: SsoConnection,
                                                           make_member: Callable[..., Any],
                                                           sso: Callable[..., Any]) -> None:
    member = make_member(connection.org, "user", email="bob@acme.test")
    sso(connection, "bob@acme.test", groups=["IT"])
    member.refresh_from_db()
    assert member.role == "user"


def test_unauthorized_domain(client: Any, connection: SsoConnection, sso: Callable[..., Any]) -> None:
    response = sso(connection, "mallory@evil.test")
    assert response.status_code == 403
    assert b"Unauthorized domain" in response.content
    assert _session_user_id(client) is None
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(email="mallory@evil.test").exists()
    event = AuditEvent.objects.get(event="SSO_FAILURE")
    assert event.details == {"reason": "unauthorized_domain", "protocol": "saml", "connection": connection.pk,
                             "domain": "evil.test"}
    assert event.email == "mallory@evil.test" and event.org_id == connection.org.pk


def test_subdomains_and_unverified_domains_are_not_allowed(connection: SsoConnection,
                                                           sso: Callable[..., Any]) -> None:
    SsoDomain.objects.create(org=connection.org, domain="pending.test")  # claimed, not verified
    assert sso(connection, "a@eu.acme.test").status_code == 403
    assert sso(connection, "a@pending.test").status_code == 403


def test_allowed_domains_setting_replaces_the_verified_domains(connection: SsoConnection,
                                                               sso: Callable[..., Any]) -> None:
    org = connection.org
    org.settings = {"sso": {"allowedDomains": ["Partner.test"]}}
    org.save()
    assert sso(connection, "a@partner.test").status_code == 302
    assert sso(connection, "b@acme.test").status_code == 403


@pytest.mark.parametrize("change, reason", [({"enabled": False}, "connection_disabled"),
                                            ({"plan": "team"}, "not_enterprise")])
def test_disabled_connection_or_non_enterprise_org_is_refused(client: Any, connection: SsoConnection,
                                                              sso: Callable[..., Any], change: dict[str, Any],
                                                              reason: str) -> None:
    if "enabled" in change:
        connection.enabled = False
        connection.save()
    else:
        Organization.objects.filter(pk=connection.org_id).update(plan=change["plan"])
    response = sso(connection, "a@acme.test")
    assert response.status_code == 403
    assert b"Authentication failed" in response.content
    assert reason.encode() not in response.content  # the page says nothing about why
    assert _session_user_id(client) is None
    event = AuditEvent.objects.get(event="SSO_FAILURE")
    assert event.details["reason"] == reason
    assert {"reason", "protocol", "connection"} <= set(event.details)
    assert event.details["connection"] == connection.pk and event.details["protocol"] == "saml"
    assert not Membership.objects.filter(user__email="a@acme.test").exists()


def test_deactivated_user_is_refused(connection: SsoConnection, make_user: Callable[..., Any],
                                     sso: Callable[..., Any]) -> None:
    make_user(email="gone@acme.test", is_active=False)
    assert sso(connection, "gone@acme.test").status_code == 403
    assert AuditEvent.objects.get(event="SSO_FAILURE").details["reason"] == "user_inactive"


def test_a_non_address_is_refused(connection: SsoConnection, sso: Callable[..., Any]) -> None:
    assert sso(connection, "not an email").status_code == 403
    assert AuditEvent.objects.get(event="SSO_FAILURE").details["reason"] == "no_email"


def test_trusted_idp_mfa_counts_as_mfa(client: Any, connection: SsoConnection, make_user: Callable[..., Any],
                                       totp_device: Callable[..., Any], sso: Callable[..., Any]) -> None:
    connection.trust_idp_mfa = True
    connection.save()
    user = make_user(email="mfa@acme.test")
    totp_device(user)  # a twig device too: the trusted IdP MFA is enough, no /login/verify/
    response = sso(connection, "mfa@acme.test", idp_mfa=True)
    assert response.status_code == 302 and response["Location"] == "/"
    assert _session_user_id(client) == str(user.pk)
    assert client.session.get("twig_mfa_used") is True
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.mfa_used is True
    assert event.details == {"method": "sso", "protocol": "saml", "connection": connection.pk, "idpMfa": True,
                             "mfaMethod": "sso+idp_mfa"}


def test_untrusted_idp_mfa_does_not_count(client: Any, connection: SsoConnection, sso: Callable[..., Any]) -> None:
    response = sso(connection, "x@acme.test", idp_mfa=True)
    assert response.status_code == 302
    assert not client.session.get("twig_mfa_used")
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.mfa_used is False and event.details["idpMfa"] is True and "mfaMethod" not in event.details


def test_user_with_totp_goes_to_login_verify_then_signs_in_as_sso(client: Any, connection: SsoConnection,
                                                                   make_user: Callable[..., Any],
                                                                   make_org: Callable[..., Organization],
                                                                   totp_device: Callable[..., Any],
                                                                   sso: Callable[..., Any]) -> None:
    user = make_user(email="totp@acme.test")
    Membership.objects.create(org=make_org("second"), user=user, role="user", role_changed_at=clock.now())
    _, secret = totp_device(user)
    response = sso(connection, "totp@acme.test", idp_mfa=True, next="/account/")  # IdP MFA not trusted here
    assert response.status_code == 302 and response["Location"] == "/login/verify/"
    assert _session_user_id(client) is None
    assert not AuditEvent.objects.filter(event="LOGIN_SUCCESS").exists()
    response = client.post("/login/verify/", {"code": oathtool(secret)})
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert _session_user_id(client) == str(user.pk)
    assert client.session[SESSION_KEY] == connection.org.pk  # no org chooser although two orgs
    event = AuditEvent.objects.get(event="LOGIN_SUCCESS")
    assert event.mfa_used is True and event.org_id == connection.org.pk
    assert event.details == {"method": "sso", "protocol": "saml", "connection": connection.pk, "idpMfa": True,
                             "mfaMethod": "totp"}


def test_a_separation_of_duties_refusal_rolls_the_jit_account_back(connection: SsoConnection,
                                                                   sso: Callable[..., Any]) -> None:
    from django.contrib.auth import get_user_model

    from twig_auth.authz import sod
    from twig_auth.authz.models import SodRule

    # A rule that the manager role alone breaks: the member the Engineering group maps to cannot be added.
    held = sorted(sod.close(sod._role_held("manager")))
    SodRule.objects.create(org=connection.org, first=held[0], second=held[1], created_at=clock.now())
    response = sso(connection, "eng@acme.test", groups=["Engineering"])
    assert response.status_code == 403
    assert not get_user_model().objects.filter(email="eng@acme.test").exists()
    event = AuditEvent.objects.get(event="SSO_FAILURE")
    assert event.details["reason"] == "membership_refused" and event.email == "eng@acme.test"
