"""Never fails silently: when the audit write fails, the change it records is rolled back with it.

The failure is a real database error, not a mock: the chain's head is wound back by one, so the next event's
position is taken and its insert breaks the (org, seq) unique constraint inside the service's transaction.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.services import issue_api_key
from twig_auth.audit import chain
from twig_auth.audit.models import AuditChainHead, AuditEvent
from twig_auth.authz import services as authz_services
from twig_auth.authz.models import Grant
from twig_auth.core.context import RequestContext
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Membership


def break_the_next_append(org) -> AuditChainHead:
    head = AuditChainHead.objects.get(chain=chain.chain_key(org.pk))
    AuditChainHead.objects.filter(pk=head.pk).update(seq=head.seq - 1)
    return head


def unchanged(org, head: AuditChainHead, events_before: int) -> None:
    after = AuditChainHead.objects.get(pk=head.pk)
    assert after.seq == head.seq - 1, "the head's move rolled back too"
    assert AuditEvent.objects.filter(org=org).count() == events_before


def test_a_role_change_whose_event_cannot_be_written_does_not_happen(org, owner, make_member):
    member = make_member(org, "user", email="ann@acme.test")
    before = AuditEvent.objects.filter(org=org).count()
    head = break_the_next_append(org)
    with pytest.raises(IntegrityError):
        org_services.change_role(membership=member, role="manager", context=RequestContext(actor=owner.user))
    assert Membership.objects.get(pk=member.pk).role == "user"
    unchanged(org, head, before)


def test_a_grant_whose_event_cannot_be_written_does_not_exist(org, owner, make_member):
    member = make_member(org, "user", email="ann@acme.test")
    before = AuditEvent.objects.filter(org=org).count()
    head = break_the_next_append(org)
    with pytest.raises(IntegrityError):
        authz_services.grant_permission(org=org, resource_type="agent", resource_id="*", action="use",
                                        user=member.user, context=RequestContext(actor=owner.user))
    assert not Grant.objects.exists()
    unchanged(org, head, before)


def test_an_api_key_whose_event_cannot_be_written_is_not_issued(org, owner):
    before = AuditEvent.objects.filter(org=org).count()
    head = break_the_next_append(org)
    with pytest.raises(IntegrityError):
        issue_api_key(creator=owner, name="ci", scopes=["read"], environment="live",
                      context=RequestContext(actor=owner.user))
    assert not ApiKey.objects.exists()
    unchanged(org, head, before)


@pytest.mark.django_db(transaction=True)
def test_through_the_api_the_request_fails_and_nothing_is_written(make_org, make_member):
    """The same, committed for real (no test transaction around it): an error answer, no grant, the chain intact."""
    from tests.support.clients import signed_in

    org = make_org("acme")
    owner = make_member(org, "super_admin", email="owner@acme.test")
    make_member(org, "user", email="ann@acme.test")
    before = AuditEvent.objects.filter(org=org).count()
    head = break_the_next_append(org)
    api = signed_in(owner)
    api.raise_request_exception = False
    response = api.post("/api/grants", {"resource": "agent:*", "action": "use", "user": "ann@acme.test"},
                        content_type="application/json")
    assert response.status_code >= 500
    assert not Grant.objects.exists()
    unchanged(org, head, before)
    # once the head is right again, the same request succeeds and the chain verifies
    AuditChainHead.objects.filter(pk=head.pk).update(seq=head.seq)
    assert api.post("/api/grants", {"resource": "agent:*", "action": "use", "user": "ann@acme.test"},
                    content_type="application/json").status_code == 201
    assert Grant.objects.count() == 1 and chain.verify_chain(org.pk).ok
