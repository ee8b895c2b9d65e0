"""The retention purge: delete each chain's events older than its retention, oldest first, in batches.

An org keeps its events ``auditRetentionDays`` days (its settings document; ``AUDIT_RETENTION_DAYS`` by default,
at most 90 unless the org is on the enterprise plan); the org-less events keep ``AUDIT_RETENTION_DAYS``.

Only a *prefix* of a chain is deleted: the events up to (not including) the oldest event still within retention.
With a clock that never goes back that is exactly "every event older than the cutoff"; an older event recorded
after a younger one (a clock step back) is kept until the events before it go, so nothing younger than the
retention is ever deleted and the chain stays one unbroken run. Each batch (``AUDIT_PURGE_BATCH_SIZE`` events) is
one transaction holding the chain's head row: the events are deleted and the head's anchor moves to the last
deleted event (its ``seq`` and ``hash``), which the first remaining event's ``prevHash`` must equal. One
``AUDIT_PURGED`` event per chain that lost events records the count.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Min

from twig_auth.audit.chain import ORGLESS, chain_events, chain_key
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditChainHead
from twig_auth.audit.services import record
from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.core.context import RequestContext

logger = logging.getLogger("twig_auth.audit")


@dataclass(frozen=True)
class PurgeResult:
    chain: str
    org: Any                 # the Organization; None for the org-less chain and for an org deleted since
    retention_days: int
    cutoff: dt.datetime
    through_seq: int         # the chain's events up to this seq are (or would be) gone
    deleted: int             # events deleted (dry run: that would be)


def retention_days(org: Any) -> int:
    """Days the events of ``org`` are kept (None, the org-less chain or a deleted org: ``AUDIT_RETENTION_DAYS``)."""
    if org is None:
        return int(app_settings.AUDIT_RETENTION_DAYS)
    from twig_auth.orgs import policy
    from twig_auth.orgs.policy import FREE_AUDIT_RETENTION_MAX

    days = int(policy.effective(org).get("auditRetentionDays") or app_settings.AUDIT_RETENTION_DAYS)
    return days if org.is_enterprise else min(days, FREE_AUDIT_RETENTION_MAX)


def _through(org_id: Any, head: AuditChainHead, cutoff: dt.datetime) -> int:
    """The last seq of the chain's prefix older than ``cutoff``."""
    young = chain_events(org_id).filter(seq__gt=head.anchor_seq, timestamp__gte=cutoff).aggregate(m=Min("seq"))["m"]
    return head.seq if young is None else young - 1


def purge_chain(org_id: Any, org: Any, *, dry_run: bool = False, batch_size: int | None = None,
                context: RequestContext | None = None) -> PurgeResult:
    key = chain_key(org_id)
    days = retention_days(org)
    cutoff = clock.now() - dt.timedelta(days=days)
    head = AuditChainHead.objects.filter(chain=key).first()
    if head is None:
        return PurgeResult(key, org, days, cutoff, 0, 0)
    through = _through(org_id, head, cutoff)
    if dry_run or through <= head.anchor_seq:
        count = chain_events(org_id).filter(seq__gt=head.anchor_seq, seq__lte=through).count() if dry_run else 0
        return PurgeResult(key, org, days, cutoff, max(through, head.anchor_seq), count)
    batch_size = batch_size or app_settings.AUDIT_PURGE_BATCH_SIZE
    deleted = 0
    while True:
        with transaction.atomic():
            locked = AuditChainHead.objects.select_for_update().get(chain=key)
            if locked.anchor_seq >= through:
                break
            end = min(through, locked.anchor_seq + batch_size)
            window = chain_events(org_id).filter(seq__gt=locked.anchor_seq, seq__lte=end)
            last = window.order_by("-seq", "-id").values_list("seq", "hash").first()
            count = window._purge()
            if last is not None:
                AuditChainHead.objects.filter(chain=key).update(anchor_seq=last[0], anchor_hash=last[1],
                                                                purged_at=clock.now())
            else:  # nothing left in this span (removed by other means): move on, so verify reports the gap
                AuditChainHead.objects.filter(chain=key).update(anchor_seq=end, purged_at=clock.now())
            deleted += count
    if deleted:
        logger.info("audit purge %s: %d events deleted through seq %d (older than %s)", key, deleted, through,
                    cutoff.isoformat())
        record(Event.AUDIT_PURGED, context=context or RequestContext.system(), org=org if org is not None else org_id,
               details={"count": deleted, "throughSeq": through, "retentionDays": days,
                        "before": cutoff.isoformat()})
    return PurgeResult(key, org, days, cutoff, through, deleted)


def purge(*, org: Any = None, dry_run: bool = False, batch_size: int | None = None,
          context: RequestContext | None = None) -> list[PurgeResult]:
    """Purge ``org``'s chain, or every chain (every org's and the org-less one) when ``org`` is None."""
    from twig_auth.orgs.models import Organization

    if org is not None:
        return [purge_chain(org.pk, org, dry_run=dry_run, batch_size=batch_size, context=context)]
    results = []
    orgs = {o.pk: o for o in Organization.objects.all()}
    for head in AuditChainHead.objects.order_by("chain"):
        org_id = None if head.chain == ORGLESS else head.org_id
        owner = orgs.get(org_id) if org_id is not None else None  # None too for an org deleted since: the default
        results.append(purge_chain(org_id, owner, dry_run=dry_run, batch_size=batch_size, context=context))
    return results
