"""Read helpers for API keys shared by the pages, the REST API and the admin. No writes, no DRF."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet, Sum

from twig_auth.apikeys.models import ApiKey, ApiKeyUsage
from twig_auth.apikeys.usage import buffer
from twig_auth.core import clock
from twig_auth.orgs.models import Membership
from twig_auth.orgs.roles import Role


def visible_keys(membership: Membership) -> QuerySet[ApiKey]:
    """Return the keys ``membership`` may see: every key of the org for admins, otherwise their own."""
    qs = ApiKey.objects.filter(org_id=membership.org_id).select_related("created_by__user")
    return qs if membership.has_role(Role.ADMIN) else qs.filter(created_by_id=membership.pk)


def usage_summary(key: ApiKey, days: int = 30) -> dict[str, Any]:
    """Return requests per day (oldest first, zero-filled) and per endpoint and status for ``key``."""
    buffer.flush()
    key.refresh_from_db(fields=["last_used_at", "last_used_ip"])
    today = clock.now().date()
    since = today - dt.timedelta(days=days - 1)
    rows = ApiKeyUsage.objects.filter(key=key, day__gte=since)
    per_day = dict(rows.values_list("day").annotate(n=Sum("count")).values_list("day", "n"))
    per_endpoint = (rows.values("endpoint", "status").annotate(count=Sum("count"))
                    .order_by("-count", "endpoint", "status"))
    return {
        "id": key.pk, "last_used_at": key.last_used_at, "last_used_ip": key.last_used_ip,
        "days": [{"day": since + dt.timedelta(days=i), "count": per_day.get(since + dt.timedelta(days=i), 0)}
                 for i in range(days)],
        "endpoints": list(per_endpoint),
        "total": sum(per_day.values()),
    }
