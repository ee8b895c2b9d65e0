"""Row builders for the decision tests: grants, policies, groups and resources straight through the ORM (the
services have tests of their own), each policy change announced to the store as the services do."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from twig_auth.authz import store
from twig_auth.authz.models import Grant, Policy
from twig_auth.core import clock
from twig_auth.orgs.models import Group, GroupMembership, Membership, Organization
from twig_project.workspace.models import Agent, DataSource

_seq = itertools.count(1)

# Monday 2026-03-09 15:00 UTC: 11:00 in New York (EDT since March 8), 16:00 in Berlin.
MONDAY_3PM = dt.datetime(2026, 3, 9, 15, 0, tzinfo=dt.UTC)


def agent(org: Organization, *, created_by: Membership | None = None, updated_by: Membership | None = None,
          **kw: Any) -> Agent:
    return Agent.objects.create(org=org, name=kw.pop("name", f"Agent {next(_seq)}"),
                                created_by=created_by.user if created_by else None,
                                updated_by=updated_by.user if updated_by else None, **kw)


def data_source(org: Organization, *, created_by: Membership | None = None, **kw: Any) -> DataSource:
    return DataSource.objects.create(org=org, name=kw.pop("name", f"Source {next(_seq)}"),
                                     kind=kw.pop("kind", DataSource.Kind.WEBSITE),
                                     created_by=created_by.user if created_by else None, **kw)


def group(org: Organization, name: str | None = None, *members: Membership, access_control: Any = None,
          role: str = "member") -> Group:
    g = Group.objects.create(org=org, name=name or f"Group {next(_seq)}", access_control=access_control)
    for m in members:
        GroupMembership.objects.create(group=g, membership=m, role=role)
    return g


def grant(org: Organization, resource: Any, action: str, *, to: Membership | Group,
          expires_at: dt.datetime | None = None, access_control: Any = None) -> Grant:
    """``resource``: a model instance, ``"agent:*"`` or ``"agent:<id>"``."""
    if isinstance(resource, str):
        rtype, _, rid = resource.partition(":")
    else:
        from twig_auth.authz.decisions import resource_key

        rtype, _, rid = resource_key(resource).partition(":")
    row = Grant(org=org, resource_type=rtype, resource_id=rid, action=action,
                user=to.user if isinstance(to, Membership) else None, group=to if isinstance(to, Group) else None,
                expires_at=expires_at, access_control=access_control, created_at=clock.now())
    row.save()
    return row


def policy(org: Organization, resource: str, action: str, effect: str = "allow", *conditions: dict[str, Any],
           name: str | None = None, enabled: bool = True, **extra: Any) -> Policy:
    now = clock.now()
    row = Policy(org=org, name=name or f"policy {next(_seq)}", enabled=enabled, created_at=now, updated_at=now,
                 document={"policy": {"resource": resource, "action": action, "effect": effect,
                                      "conditions": list(conditions), **extra}})
    row.save()
    store.policies_changed(org.pk)
    return row
