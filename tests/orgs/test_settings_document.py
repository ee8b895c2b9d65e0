"""The org settings document: defaults, PATCH merge, field-level validation, enterprise-only keys."""

from __future__ import annotations

import pytest

from twig_auth.exceptions import InvalidInput, PermissionDenied
from twig_auth.orgs import policy, services


def test_defaults_follow_the_contract(db):
    doc = policy.defaults()
    assert doc["session"] == {"timeout": 604800, "renewOnActivity": True, "maxConcurrent": 3,
                              "enforceIPBinding": False}
    assert doc["lockout"] == {"maxAttempts": 5, "windowSeconds": 900, "lockSeconds": 900}
    assert doc["mfa"] == {"requiredForAdmins": True, "requiredForAll": False, "gracePeriodDays": 7}
    assert doc["ipAllowlist"] == [] and doc["auditRetentionDays"] == 90 and doc["timezone"] == "UTC"


def test_patch_merges_sections_and_keeps_other_keys(org):
    doc = services.update_org_settings(org=org, patch={"session": {"maxConcurrent": 5}})
    assert doc["session"]["maxConcurrent"] == 5 and doc["session"]["timeout"] == 604800
    doc = services.update_org_settings(org=org, patch={"session": {"timeout": 3600}})
    assert doc["session"]["maxConcurrent"] == 5 and doc["session"]["timeout"] == 3600


def test_every_bad_field_is_named(org):
    with pytest.raises(InvalidInput) as info:
        services.update_org_settings(org=org, patch={
            "session": {"timeout": "soon", "maxConcurrent": 0, "bogus": 1},
            "lockout": {"maxAttempts": True}, "ipAllowlist": ["10.0.0.0/33"], "timezone": "Mars/Olympus",
            "nope": 1})
    assert set(info.value.errors) == {"session.timeout", "session.maxConcurrent", "session.bogus",
                                      "lockout.maxAttempts", "ipAllowlist", "timezone", "nope"}
    org.refresh_from_db()
    assert org.settings == {}, "nothing is half-written"


def test_enterprise_only_keys_are_refused_on_other_plans(make_org):
    free = make_org("freebie", plan="free")
    for patch in ({"ipAllowlist": ["10.0.0.0/8"]}, {"sso": {"enforce": True}}, {"auditRetentionDays": 365}):
        with pytest.raises(PermissionDenied):
            services.update_org_settings(org=free, patch=patch)
    doc = services.update_org_settings(org=free, patch={"auditRetentionDays": 30, "ipAllowlist": []})
    assert doc["auditRetentionDays"] == 30


def test_enterprise_orgs_may_set_allowlists_and_domains(org):
    doc = services.update_org_settings(org=org, patch={
        "ipAllowlist": ["192.168.1.0/24", "2001:db8::/32"], "sso": {"allowedDomains": ["Acme.TEST"]},
        "auditRetentionDays": 365})
    assert doc["ipAllowlist"] == ["192.168.1.0/24", "2001:db8::/32"]
    assert doc["sso"]["allowedDomains"] == ["acme.test"]


def test_only_admins_change_settings(org, make_member):
    from twig_auth.core.context import RequestContext

    manager = make_member(org, "manager")
    with pytest.raises(PermissionDenied):
        services.update_org_settings(org=org, patch={"timezone": "Europe/Berlin"},
                                     context=RequestContext(actor=manager.user))
