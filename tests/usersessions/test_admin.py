"""Sessions in the admin: listed without their key, ended through the audited service."""

from __future__ import annotations

from django.test import Client

from tests.conftest import PASSWORD
from twig_auth.audit.models import AuditEvent
from twig_auth.usersessions.models import UserSession


def test_admin_lists_sessions_without_keys_and_ends_them(client, org, make_member, make_user):
    make_member(org, email="mia@acme.test")
    mia = Client()
    assert mia.post("/login/", {"email": "mia@acme.test", "password": PASSWORD}).status_code == 302
    row = UserSession.objects.get(user__email="mia@acme.test", revoked_at__isnull=True)
    staff = make_user("ops@example.test", is_staff=True, is_superuser=True)
    client.force_login(staff, backend="twig_auth.passwords.backends.EmailBackend")
    page = client.get("/admin/twig_auth/usersession/")
    assert page.status_code == 200 and b"mia@acme.test" in page.content
    # The record key identifies rows in the admin; it is no credential: only a signed cookie naming it is.
    thief = Client()
    thief.cookies["twig_session"] = row.pk
    assert thief.get("/").status_code == 302
    response = client.post("/admin/twig_auth/usersession/", {"action": "end_selected", "_selected_action": [row.pk]})
    assert response.status_code == 302
    assert mia.get("/").status_code == 302
    event = AuditEvent.objects.get(event="SESSION_REVOKED")
    assert event.details["reason"] == "admin_ended" and event.email == "mia@acme.test"
    assert event.details["by"] == "ops@example.test"
