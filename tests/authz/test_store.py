"""The per-process compiled policy sets: one per org, one cache get per decision, rebuilt when the shared
version moves (an edit on another worker), never stale, and safe when the cache is down."""

from __future__ import annotations

import logging
from unittest import mock

import pytest
from django.core.cache import cache

from tests.authz import helpers_decisions as h
from twig_auth.authz import store
from twig_auth.authz.decisions import authorize
from twig_auth.authz.engine import PolicySet
from twig_auth.authz.models import Policy


@pytest.fixture(autouse=True)
def _fresh_process():
    store.forget_local()
    yield
    store.forget_local()


def deny_all(org, **kw):
    return h.policy(org, "agent:*", "*", "deny", {"user.role": {"in": ["user", "manager", "admin", "super_admin"]}},
                    **kw)


def test_two_orgs_two_sets(make_org):
    acme, globex = make_org("acme"), make_org("globex")
    p1 = h.policy(acme, "agent:*", "use", "allow")
    p2 = h.policy(globex, "agent:*", "view", "deny")
    s1, s2 = store.policy_set(acme.pk), store.policy_set(globex.pk)
    assert [p.id for p in s1] == [p1.id] and [p.id for p in s2] == [p2.id]
    assert store.policy_set(acme.pk) is s1  # compiled once
    assert store.policy_names(acme.pk) == {p1.id: p1.name}


def test_an_org_without_policies_costs_no_query(make_org, django_assert_num_queries):
    org = make_org("acme")
    with django_assert_num_queries(0):  # a new org's version says "empty"
        assert len(store.policy_set(org.pk)) == 0
    p = h.policy(org, "agent:*", "use", "allow")
    assert len(store.policy_set(org.pk)) == 1
    p.delete()
    store.policies_changed(org.pk)  # after commit, by the services (or the model signal): empty again
    with django_assert_num_queries(0):
        assert len(store.policy_set(org.pk)) == 0
    cache.clear()  # unknown after a flush: read once
    with django_assert_num_queries(1):
        assert len(store.policy_set(org.pk)) == 0


def test_any_orm_write_bumps_the_version_after_commit(org, owner, make_member,
                                                      django_capture_on_commit_callbacks):
    member = make_member(org, "user")
    a = h.agent(org)
    assert not authorize(member, "use", a).allowed
    now = h.MONDAY_3PM
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        p = Policy.objects.create(org=org, name="direct", created_at=now, updated_at=now,  # around the services
                                  document={"policy": {"resource": "agent:*", "action": "use", "effect": "allow"}})
        assert not authorize(member, "use", a).allowed  # not before the commit
    assert len(callbacks) == 1
    assert authorize(member, "use", a).decided_by == "policy"
    with django_capture_on_commit_callbacks(execute=True):
        p.enabled = False
        p.save()
    assert not authorize(member, "use", a).allowed


def test_warm_lookup_is_one_cache_get_and_no_query(make_org, django_assert_num_queries):
    org = make_org("acme")
    h.policy(org, "agent:*", "use", "allow")
    first = store.policy_set(org.pk)
    with mock.patch.object(cache, "get", wraps=cache.get) as get, django_assert_num_queries(0):
        assert store.policy_set(org.pk) is first
    assert get.call_count == 1


def test_an_edit_is_seen_by_the_next_decision(org, owner, make_member):
    member = make_member(org, "user")
    a = h.agent(org)
    h.grant(org, a, "use", to=member)
    assert authorize(member, "use", a).allowed
    p = deny_all(org)  # the helper calls policies_changed, as the services do
    assert authorize(member, "use", a).decided_by == "policy"
    p.enabled = False
    p.save()
    store.policies_changed(org.pk)
    assert authorize(member, "use", a).allowed


def test_another_workers_edit_reaches_this_process_through_the_version(make_org):
    org = make_org("acme")
    h.policy(org, "agent:*", "use", "allow", name="one")
    before = store.policy_set(org.pk)
    # another worker saves a second policy (bulk_create: no signal in this process) ...
    now = h.MONDAY_3PM
    Policy.objects.bulk_create([Policy(org=org, name="two", created_at=now, updated_at=now, document={
        "policy": {"resource": "agent:*", "action": "view", "effect": "deny"}})])
    assert store.policy_set(org.pk) is before  # no version change, no reload (the edit was not announced yet)
    # ... and after its commit bumps the shared version: this process's dict is untouched
    cache.set(store.version_key(org.pk), "bumped-by-worker-2", timeout=None)
    after = store.policy_set(org.pk)
    assert after is not before and {p.document["policy"]["action"] for p in after} == {"use", "view"}


def test_a_new_process_compiles_from_the_database(make_org):
    org = make_org("acme")
    h.policy(org, "agent:*", "use", "allow")
    before = store.policy_set(org.pk)
    store.forget_local()  # a fresh worker: same shared version, nothing compiled yet
    again = store.policy_set(org.pk)
    assert again is not before and [p.id for p in again] == [p.id for p in before]


def test_a_flushed_cache_never_serves_an_old_set(make_org):
    org = make_org("acme")
    h.policy(org, "agent:*", "use", "allow")
    assert len(store.policy_set(org.pk)) == 1
    cache.clear()  # versions are random tokens: a re-created version cannot match the old one
    Policy.objects.filter(org=org).delete()
    assert len(store.policy_set(org.pk)) == 0


def test_cache_outage_compiles_every_time(make_org, caplog):
    org = make_org("acme")
    h.policy(org, "agent:*", "use", "allow")
    with mock.patch.object(cache, "get", side_effect=ConnectionError("down")), caplog.at_level(logging.WARNING):
        one, two = store.policy_set(org.pk), store.policy_set(org.pk)
    assert one is not two and len(one) == len(two) == 1
    assert "Redis is unavailable (first failure in authz policy version)" in caplog.text


def test_a_policy_stored_around_the_validator_is_skipped_loudly(make_org, caplog):
    org = make_org("acme")
    good = h.policy(org, "agent:*", "use", "allow")
    now = h.MONDAY_3PM
    Policy.objects.create(org=org, name="broken", created_at=now, updated_at=now,
                          document={"policy": {"resource": "agent:*", "action": "use", "effect": "maybe"}})
    store.policies_changed(org.pk)
    with caplog.at_level(logging.ERROR):
        compiled = store.policy_set(org.pk)
    assert [p.id for p in compiled] == [good.id]
    assert "does not compile and is ignored" in caplog.text
    assert isinstance(compiled, PolicySet)
