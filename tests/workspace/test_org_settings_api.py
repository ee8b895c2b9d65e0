"""/api/org/settings: admins read and merge the org settings document."""

from __future__ import annotations

import pytest

from twig_auth.audit.models import AuditEvent
from twig_auth.orgs.models import Organization

from .helpers import assert_error

pytestmark = pytest.mark.django_db


def test_admin_reads_the_effective_document(api_as, members):
    response = api_as("admin").get("/api/org/settings")
    assert response.status_code == 200
    body = response.json()
    assert body["session"] == {"timeout": 604800, "renewOnActivity": True, "maxConcurrent": 3,
                               "enforceIPBinding": False}
    assert set(body) == {"session", "mfa", "lockout", "ipAllowlist", "sso", "rateLimits", "auditRetentionDays",
                         "timezone", "accessReview"}
    assert body["accessReview"] == {"deactivateAfterDays": None}
    assert body["rateLimits"] == {"execute": "100/m", "write": "10/m", "read": "200/m", "admin": "50/m"}


def test_patch_merges_and_is_audited(api_as, org, members):
    response = api_as("admin").patch("/api/org/settings", {"session": {"maxConcurrent": 5},
                                                           "ipAllowlist": ["10.0.0.0/8"]})
    assert response.status_code == 200
    body = response.json()
    assert body["session"]["maxConcurrent"] == 5 and body["session"]["timeout"] == 604800
    assert body["ipAllowlist"] == ["10.0.0.0/8"]
    org.refresh_from_db()
    assert org.settings == {"session": {"maxConcurrent": 5}, "ipAllowlist": ["10.0.0.0/8"]}
    event = AuditEvent.objects.get(event="ORG_SETTINGS_CHANGED")
    assert event.email == "admin@acme.test" and event.details == {"changed": ["ipAllowlist", "session"]}


def test_invalid_values_name_each_field(api_as, org, members):
    response = api_as("super_admin").patch("/api/org/settings", {"session": {"timeout": "soon", "maxConcurrent": 0},
                                                                  "colour": "blue"})
    body = assert_error(response, 400, "invalid")
    assert set(body["errors"]) == {"session.timeout", "session.maxConcurrent", "colour"}
    org.refresh_from_db()
    assert org.settings == {}


def test_non_object_body_is_invalid(api_as, members):
    assert_error(api_as("admin").patch("/api/org/settings", ["session"]), 400, "invalid")


def test_enterprise_only_keys_are_refused_on_free_plans(make_member, logged_in, make_org, stepped_up):
    free = make_org("free-co", plan="free")
    owner = make_member(free, "super_admin")
    client = logged_in(owner.user)
    stepped_up()
    response = client.patch("/api/org/settings", {"ipAllowlist": ["10.0.0.0/8"]}, content_type="application/json")
    body = assert_error(response, 403, "permission_denied")
    assert "enterprise" in body["detail"]
    assert Organization.objects.get(pk=free.pk).settings == {}


@pytest.mark.parametrize("role", ["manager", "user"])
def test_below_admin_cannot_read_or_change_settings(api_as, org, members, role):
    api = api_as(role)
    assert_error(api.get("/api/org/settings"), 403, "permission_denied")
    assert_error(api.patch("/api/org/settings", {"timezone": "Europe/Berlin"}), 403, "permission_denied")
    org.refresh_from_db()
    assert org.settings == {}


def test_settings_are_those_of_the_active_org(api_as, members, other_org, make_member):
    """A member of two orgs changes the settings of the org their session is in, not the other one."""
    from twig_auth.orgs import services as org_services
    from twig_auth.orgs.active import SESSION_KEY

    admin = members["admin"]
    org_services.add_member(org=other_org, user=admin.user, role="admin")
    api = api_as("admin")
    session = api.client.session
    session[SESSION_KEY] = other_org.pk
    session.save()
    assert api.patch("/api/org/settings", {"timezone": "Europe/Berlin"}).status_code == 200
    other_org.refresh_from_db()
    admin.org.refresh_from_db()
    assert other_org.settings == {"timezone": "Europe/Berlin"} and admin.org.settings == {}
