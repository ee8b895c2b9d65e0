"""Admin screens: role changes through the admin are audited; audit events are read-only."""

from __future__ import annotations

import pytest

from twig_auth.audit.models import AuditEvent
from twig_auth.orgs.models import Membership


@pytest.fixture
def admin_client(client, make_user, stepped_up):
    staff = make_user("ops@example.test", is_staff=True, is_superuser=True)
    client.force_login(staff, backend="twig_auth.passwords.backends.EmailBackend")
    return stepped_up()  # role changes need a recent second factor (tests/mfa/test_step_up.py covers the prompt)


def test_role_change_in_the_admin_goes_through_the_service_and_is_audited(admin_client, org, make_member):
    member = make_member(org)
    url = f"/admin/twig_auth/membership/{member.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    response = admin_client.post(url, {"role": "manager", "attributes": "{}"})
    assert response.status_code == 302, response.content[:500]
    assert Membership.objects.get(pk=member.pk).role == "manager"
    event = AuditEvent.objects.get(event="ROLE_CHANGED")
    assert event.details["to"] == "manager" and event.email == "ops@example.test"


def test_admin_refuses_to_demote_the_last_super_admin_with_a_message(admin_client, org, owner):
    url = f"/admin/twig_auth/membership/{owner.pk}/change/"
    response = admin_client.post(url, {"role": "user", "attributes": "{}"}, follow=True)
    assert Membership.objects.get(pk=owner.pk).role == "super_admin"
    assert b"at least one super admin" in response.content


def test_member_lists_search_and_filter(admin_client, org, owner, make_member):
    make_member(org, "manager", email="mia@acme.test")
    response = admin_client.get("/admin/twig_auth/membership/", {"q": "mia@", "role__exact": "manager"})
    assert response.status_code == 200
    assert b"mia@acme.test" in response.content and b"owner@acme.test" not in response.content


def test_audit_events_are_readable_but_not_editable(admin_client, org, owner):
    event = AuditEvent.objects.first()
    assert admin_client.get("/admin/twig_auth/auditevent/").status_code == 200
    assert admin_client.get(f"/admin/twig_auth/auditevent/{event.pk}/change/").status_code == 200
    admin_client.post(f"/admin/twig_auth/auditevent/{event.pk}/change/", {"event": "LOGOUT"})
    assert AuditEvent.objects.get(pk=event.pk).event == event.event
    assert admin_client.get(f"/admin/twig_auth/auditevent/{event.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/twig_auth/auditevent/add/").status_code == 403


def test_unlock_action_unlocks_members(admin_client, org, make_member):
    from twig_auth.core.context import RequestContext
    from twig_auth.passwords import lockout
    from twig_auth.passwords.services import authenticate_password

    member = make_member(org, email="ann@acme.test")
    for _ in range(5):
        with pytest.raises(Exception):
            authenticate_password(email="ann@acme.test", password="Wrong-1!aa", context=RequestContext())
    assert lockout.is_locked("ann@acme.test")
    admin_client.post("/admin/twig_auth/membership/", {"action": "unlock_accounts", "_selected_action": [member.pk]})
    assert not lockout.is_locked("ann@acme.test")
