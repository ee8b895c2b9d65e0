"""What the Access pages show: grant, member and group rows and explanation steps, in a constant number of
queries whatever the number of rows."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.db.models import Count
from django.urls import reverse

from twig_auth.authz import registry
from twig_auth.authz.forms import resource_name, type_label, window_text
from twig_auth.authz.models import Grant
from twig_auth.core import clock
from twig_auth.orgs.models import Group, GroupMembership, Membership, Organization

KIND_LABELS = {"membership": "Membership", "time_window": "Time window", "sod": "Separation of duties",
               "policy": "Policy", "role": "Role", "owner": "Owner", "grant": "Grant", "default": "Default"}
OUTCOME_LABELS = {"allow": "Allows", "deny": "Denies", "skip": "No effect"}
MAX_ROWS = 1000


def why_url(member_pk: Any = None, action: str = "", resource: str = "") -> str:
    """The "try it" page pre-filled with a member (and an action and resource when known)."""
    query = {k: v for k, v in (("member", member_pk), ("action", action), ("resource", resource)) if v}
    return reverse("twig_auth:access_try") + ("?" + urlencode(query) if query else "")


def _names(pairs: set[tuple[str, str]], org: Organization) -> dict[tuple[str, str], str]:
    """Names of the resources ``(type, id)``: one query per type."""
    out: dict[tuple[str, str], str] = {}
    by_type: dict[str, set[str]] = {}
    for rtype, rid in pairs:
        by_type.setdefault(rtype, set()).add(rid)
    for rtype, ids in by_type.items():
        rt = registry.get(rtype)
        if rt is None:
            continue
        try:
            objects = rt.model._default_manager.filter(**{rt.org_field: org}, pk__in=list(ids))
            out.update({(rtype, str(obj.pk)): resource_name(obj) for obj in objects})
        except (LookupError, ValueError):
            continue
    return out


def grant_rows(org: Organization, tz: str) -> list[dict[str, Any]]:
    grants = list(Grant.objects.filter(org=org).select_related("user", "group", "created_by")[:MAX_ROWS])
    names = _names({(g.resource_type, g.resource_id) for g in grants if g.resource_id != "*"}, org)
    members = dict(Membership.objects.filter(org=org, user_id__in={g.user_id for g in grants if g.user_id})
                   .values_list("user_id", "pk"))
    now = clock.now()
    rows = []
    for g in grants:
        wildcard = g.resource_id == "*"
        name = (f"All {type_label(g.resource_type, plural=True).lower()}" if wildcard else
                names.get((g.resource_type, g.resource_id)))
        member_pk = members.get(g.user_id)
        rows.append({
            "grant": g, "type_label": type_label(g.resource_type), "name": name, "wildcard": wildcard,
            "grantee": g.group.name if g.group_id else getattr(g.user, "email", ""),
            "group": bool(g.group_id), "expired": g.expires_at is not None and g.expires_at <= now,
            "window": window_text(g.access_control, tz), "by": getattr(g.created_by, "email", ""),
            "why": why_url(member_pk, f"{g.resource_type}:{g.action}", "" if wildcard else g.resource)
            if member_pk else "",
        })
    return rows


def member_rows(org: Organization, tz: str) -> list[dict[str, Any]]:
    members = list(Membership.objects.filter(org=org).select_related("user").order_by("user__email")[:MAX_ROWS])
    groups: dict[Any, list[str]] = {}
    for mid, name in (GroupMembership.objects.filter(membership__org=org).order_by("group__name")
                      .values_list("membership_id", "group__name")):
        groups.setdefault(mid, []).append(name)
    return [{"membership": m, "window": window_text(m.access_control, tz), "groups": groups.get(m.pk, []),
             "why": why_url(m.pk),
             "edit": reverse("twig_auth:access_window", args=["member", m.pk])} for m in members]


def group_rows(org: Organization, tz: str) -> list[dict[str, Any]]:
    groups = Group.objects.filter(org=org).annotate(n=Count("group_memberships")).order_by("name")[:MAX_ROWS]
    return [{"group": g, "count": g.n, "window": window_text(g.access_control, tz),
             "edit": reverse("twig_auth:access_window", args=["group", g.pk])} for g in groups]


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())


def step_rows(decision: Any) -> list[dict[str, Any]]:
    """The steps of an explanation, labelled; the step that decided is marked."""
    rows = []
    decided = False
    for step in decision.steps:
        deciding = (not decided and step.kind == decision.decided_by
                    and step.outcome == ("allow" if decision.allowed else "deny"))
        decided = decided or deciding
        rows.append({"kind": step.kind, "label": kind_label(step.kind),
                     "outcome": step.outcome, "outcome_label": OUTCOME_LABELS.get(step.outcome, step.outcome),
                     "detail": step.detail, "deciding": deciding})
    return rows
