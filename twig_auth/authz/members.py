"""What decisions know about the acting member, and how long they keep it.

:func:`member_facts` returns a :class:`MemberFacts`: the org (plan, time zone), the member's time window,
groups, policy attributes, grants and the org's compiled policies, each loaded on first use.

Two levels of caching:

- **per request** (:func:`request_cache`): facts and grants are kept on the actor object and dropped whenever
  a request starts or ends, a policy changes (``store.policies_changed``) or a grant, group, group membership,
  membership or organization is saved or deleted in this process. So they are never stale across requests;
  another process's writes are seen by the next request.
- **shared** (the default cache, Redis in production): a snapshot of the member row (window, attributes) and
  of the org row (plan, settings, name), so that a credential's membership (API key, access token: role and
  ids only, no row) and a membership loaded without its org cost no query when warm. Saving or deleting the
  row through the ORM deletes its snapshot (at once and again after commit); writes that bypass the ORM's
  signals (``QuerySet.update``) are seen after at most :data:`SNAPSHOT_SECONDS`. Creating a member or an org
  writes its snapshot, so even a new member's first request reads no row. The snapshots and the org's policy
  version come in one cache round trip. Saving or deleting a policy through the ORM bumps the org's policy
  version after commit (as ``store.policies_changed`` does).

When Redis is unreachable (:mod:`twig_auth.core.outage`) the snapshots are skipped (rows are read, never
stale) and on recovery all of them are dropped (:func:`reapply_since`): writes made during the outage could
not delete them.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from twig_auth.authz import store
from twig_auth.authz.engine import PolicySet
from twig_auth.authz.grants import grants_for, window
from twig_auth.authz.models import Grant, Policy
from twig_auth.core import outage
from twig_auth.core.cache import UNAVAILABLE, attempt
from twig_auth.orgs.models import Group, GroupMembership, Membership, Organization
from twig_auth.orgs.policy import effective

logger = logging.getLogger("twig_auth.authz")

SNAPSHOT_SECONDS = 300
MEMBER_PREFIX = "twig:authz:member:"
ORG_PREFIX = "twig:authz:org:"
_ABAC_RESERVED = frozenset({"role", "id", "email", "email_domain", "groups"})
_ORG_FIELDS = ("slug", "name", "plan", "settings")

_generation = itertools.count(1)
_PROCESS = secrets.token_hex(4)  # a pickled actor's cache from another process never matches
_current = (_PROCESS, next(_generation))
_CACHE_ATTR = "_twig_authz_cache"


# --- per request --------------------------------------------------------------------------------------------

def request_cache(actor: Any) -> dict[str, Any]:
    """Return a dict to keep facts about ``actor`` in until the cache is invalidated (see the module doc)."""
    held = getattr(actor, _CACHE_ATTR, None)
    if held is not None and held[0] == _current:
        return held[1]
    fresh: dict[str, Any] = {}
    with contextlib.suppress(AttributeError):  # an actor that takes no attributes: no cache
        setattr(actor, _CACHE_ATTR, (_current, fresh))
    return fresh


def invalidate(**_: Any) -> None:
    """Drop every actor's per-request facts in this process."""
    global _current
    _current = (_PROCESS, next(_generation))


def cached_grants(actor: Any, now: Any) -> list[Grant]:
    """Return :func:`~twig_auth.authz.grants.grants_for` ``actor`` (every type), from the request cache when
    they were loaded at or before ``now`` (grants live then are a superset of those live at ``now``; callers
    re-check expiry)."""
    box = request_cache(actor)
    hit = box.get("grants")
    if hit is not None and hit[0] <= now:
        return hit[1]
    grants = grants_for(actor, now=now)
    box["grants"] = (now, grants)
    return grants


# --- shared snapshots -----------------------------------------------------------------------------------------

def _org_snapshot(org: Organization) -> dict[str, Any]:
    return {"id": org.pk, **{f: getattr(org, f) for f in _ORG_FIELDS}}


def _org_from(snapshot: dict[str, Any]) -> Organization:
    org = Organization(pk=snapshot["id"], **{f: snapshot[f] for f in _ORG_FIELDS})
    org._state.adding, org._state.db = False, "default"
    return org


def _get_many(keys: list[str]) -> dict[str, Any]:
    got = attempt("authz member facts", cache.get_many, keys)  # an outage costs queries, never correctness
    return {} if got is UNAVAILABLE else got


def _set_many(values: dict[str, Any]) -> None:
    attempt("authz member facts", cache.set_many, values, SNAPSHOT_SECONDS)


def _forget(key: str) -> None:
    def delete() -> None:
        attempt("authz member facts", cache.delete, key)  # missed during an outage: see reapply_since

    delete()
    transaction.on_commit(delete)  # a reader that saw the old row before the commit cannot leave it behind


class MemberFacts:
    """What decisions need to know about one member (see the module doc)."""

    def __init__(self, actor: Any, org: Organization, access_control: Any, attributes: Any,
                 row: Membership | None, version: str | None) -> None:
        self.actor = actor
        self.pk, self.org_id, self.user_id, self.role = actor.pk, actor.org_id, actor.user_id, actor.role
        self.uid = str(actor.user_id)
        self.org = org
        self.row = row
        self.attributes = attributes if isinstance(attributes, dict) else {}
        self.timezone: str = effective(org)["timezone"]
        self.window = window(access_control, self.timezone)
        self._version = version

    @cached_property
    def group_roles(self) -> dict[int, tuple[str, str]]:
        """``{group id: (group name, the member's role in it)}``; one query."""
        rows = GroupMembership.objects.filter(membership_id=self.pk).values_list("group_id", "group__name", "role")
        return {gid: (name, role) for gid, name, role in rows}

    @cached_property
    def user_attributes(self) -> dict[str, Any]:
        """``user.*`` for policies: the member's attributes, then role, id, email and group names (which the
        member's own attributes cannot override)."""
        User = get_user_model()
        email_field = User.get_email_field_name()
        if self.row is not None and Membership._meta.get_field("user").is_cached(self.row):
            email = getattr(self.row.user, email_field, None)
        else:
            email = User._default_manager.filter(pk=self.user_id).values_list(email_field, flat=True).first()
        return {**{k: v for k, v in self.attributes.items() if k not in _ABAC_RESERVED}, "role": self.role,
                "id": self.uid, "email": email, "groups": [name for name, _ in self.group_roles.values()]}

    @cached_property
    def policies(self) -> PolicySet | None:
        """The org's compiled policies, None when it has none (or is not enterprise)."""
        if not self.org.is_enterprise:
            return None
        compiled = store.policy_set(self.org_id, version=self._version)
        return compiled if len(compiled) else None


def member_facts(actor: Any) -> MemberFacts | None:
    """Return the actor's facts, or None when it is no member (no actor, or a membership that is gone)."""
    if actor is None or getattr(actor, "org_id", None) is None or getattr(actor, "role", None) is None:
        return None
    box = request_cache(actor)
    if "facts" not in box:
        box["facts"] = _load(actor)
    return box["facts"]


def _load(actor: Any) -> MemberFacts | None:
    org_id = actor.org_id
    row = actor if isinstance(actor, Membership) else None
    org = row.org if row is not None and Membership._meta.get_field("org").is_cached(row) else None
    keys = [store.version_key(org_id)]
    if org is None:
        keys.append(ORG_PREFIX + str(org_id))
    if row is None:
        keys.append(MEMBER_PREFIX + str(actor.pk))
    got = _get_many(keys)
    version = got.get(keys[0])
    if org is None and ORG_PREFIX + str(org_id) in got:
        org = _org_from(got[ORG_PREFIX + str(org_id)])
    if row is not None:
        if getattr(row, "deactivated_at", None) is not None:
            return None  # deactivated in its org: acts as no member (credentials refuse it first)
        if org is None:
            org = Organization.objects.get(pk=org_id)
            _set_many({ORG_PREFIX + str(org_id): _org_snapshot(org)})
        return MemberFacts(actor, org, row.access_control, row.attributes, row, version)
    member = got.get(MEMBER_PREFIX + str(actor.pk))
    if member is not None and (member["org_id"] != org_id or str(member["user_id"]) != str(actor.user_id)):
        member = None  # not this credential's row: read it
    if member is None or org is None:  # a credential's membership: read the row (and its org) once
        found = (Membership.objects.filter(pk=actor.pk)
                 .values("org_id", "user_id", "access_control", "attributes", "deactivated_at",
                         *(f"org__{f}" for f in _ORG_FIELDS)).first())
        if found is None:
            return None
        member = {k: found[k] for k in ("org_id", "user_id", "access_control", "attributes")}
        member["deactivated"] = found["deactivated_at"] is not None
        org = _org_from({"id": found["org_id"], **{f: found[f"org__{f}"] for f in _ORG_FIELDS}})
        _set_many({MEMBER_PREFIX + str(actor.pk): member, ORG_PREFIX + str(org_id): _org_snapshot(org)})
        if member["org_id"] != org_id or str(member["user_id"]) != str(actor.user_id):
            return None  # never act through somebody else's row
    if member.get("deactivated"):
        return None
    return MemberFacts(actor, org, member["access_control"], member["attributes"], None, version)


# --- keeping it fresh ---------------------------------------------------------------------------------------------

def _member_snapshot(m: Membership) -> dict[str, Any]:
    return {"org_id": m.org_id, "user_id": m.user_id, "access_control": m.access_control,
            "attributes": m.attributes, "deactivated": m.deactivated_at is not None}


def _member_changed(sender: Any, instance: Membership, created: bool = False, **_: Any) -> None:
    invalidate()
    if created:  # a new member's first request finds its row cached (a rolled-back row is never asked for)
        _set_many({MEMBER_PREFIX + str(instance.pk): _member_snapshot(instance)})
    else:
        _forget(MEMBER_PREFIX + str(instance.pk))


def _org_changed(sender: Any, instance: Organization, created: bool = False, **_: Any) -> None:
    invalidate()
    if created:
        _set_many({ORG_PREFIX + str(instance.pk): _org_snapshot(instance)})
        store.org_created(instance.pk)
    else:
        _forget(ORG_PREFIX + str(instance.pk))


def _policy_changed(sender: Any, instance: Policy, **_: Any) -> None:
    """Any policy write, through the services or not, bumps the org's version once it commits (never
    before: a process would compile the uncommitted row and keep it if the transaction rolled back)."""
    org_id = instance.org_id
    transaction.on_commit(lambda: store.bump(org_id))


def reapply_since(started: float) -> None:
    """Drop every member and org snapshot and every policy version after an outage (which rows changed
    during it is not tracked; snapshots refill on use, a missing version is re-created and recompiled)."""
    if hasattr(cache, "delete_pattern"):  # only django-redis can fail
        for prefix in (MEMBER_PREFIX, ORG_PREFIX, store.KEY_PREFIX):
            cache.delete_pattern(prefix + "*")


outage.on_recovery(reapply_since)

request_started.connect(invalidate, dispatch_uid="twig_authz_request_started")
request_finished.connect(invalidate, dispatch_uid="twig_authz_request_finished")
for _model in (Grant, Group, GroupMembership):
    post_save.connect(invalidate, sender=_model, dispatch_uid=f"twig_authz_save_{_model.__name__}")
    post_delete.connect(invalidate, sender=_model, dispatch_uid=f"twig_authz_delete_{_model.__name__}")
m2m_changed.connect(invalidate, sender=Group.members.through, dispatch_uid="twig_authz_group_members")
post_save.connect(_member_changed, sender=Membership, dispatch_uid="twig_authz_save_Membership")
post_delete.connect(_member_changed, sender=Membership, dispatch_uid="twig_authz_delete_Membership")
post_save.connect(_policy_changed, sender=Policy, dispatch_uid="twig_authz_save_Policy")
post_delete.connect(_policy_changed, sender=Policy, dispatch_uid="twig_authz_delete_Policy")
post_save.connect(_org_changed, sender=Organization, dispatch_uid="twig_authz_save_Organization")
post_delete.connect(_org_changed, sender=Organization, dispatch_uid="twig_authz_delete_Organization")
