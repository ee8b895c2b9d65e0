"""AuditEvent: append-only. Rows are inserted by :func:`twig_auth.audit.services.record` and never changed.

Each org's events (and the org-less events, as one more chain) form a hash chain: ``seq`` numbers them 1, 2, 3…
within the chain, ``hash`` is SHA-256 over the event's canonical JSON and ``prev_hash`` (the previous event's
``hash``). :class:`AuditChainHead` holds each chain's last ``seq``/``hash`` (the lock appends take) and, once the
retention purge has removed its oldest events, the anchor the remaining ones continue from. See
:mod:`twig_auth.audit.chain`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from twig_auth.audit.events import Event


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit event outside the retention purge."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events cannot be deleted; use the retention purge.")

    def _purge(self) -> int:
        """Delete the selected rows; used only by the retention purge."""
        return self._raw_delete(self.db)


class AuditEvent(models.Model):
    timestamp = models.DateTimeField(db_index=True)
    event = models.CharField(max_length=40, choices=Event.choices, db_index=True)
    org = models.ForeignKey("twig_auth.Organization", null=True, blank=True, on_delete=models.DO_NOTHING,
                            db_constraint=False, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
                             db_constraint=False, related_name="+")
    email = models.CharField(max_length=254, blank=True, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    mfa_used = models.BooleanField(default=False)
    session_id = models.CharField(max_length=64, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    seq = models.BigIntegerField(help_text="Position in its chain (the org's events, or the org-less ones): 1, 2, 3…")
    prev_hash = models.CharField(max_length=64, help_text="The hash of the chain's previous event (64 zeros first).")
    hash = models.CharField(max_length=64, help_text="SHA-256 of this event's canonical JSON, prev_hash included.")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        db_table = "twig_audit_events"
        ordering = ["-timestamp", "-id"]
        indexes = [models.Index(fields=["org", "-timestamp"], name="twig_audit_org_time")]
        constraints = [
            # one event per position in each chain; also the index the verifier walks
            models.UniqueConstraint(fields=["org", "seq"], condition=models.Q(org__isnull=False),
                                    name="twig_audit_org_seq"),
            models.UniqueConstraint(fields=["seq"], condition=models.Q(org__isnull=True),
                                    name="twig_audit_orgless_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.event} {self.email}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events cannot be deleted; use the retention purge.")

    def as_record(self) -> dict[str, Any]:
        """Return the event in the contract's field names."""
        return {
            "timestamp": self.timestamp.isoformat(),
            "event": self.event,
            "userId": str(self.user_id) if self.user_id else None,
            "email": self.email,
            "ipAddress": self.ip_address,
            "userAgent": self.user_agent,
            "mfaUsed": self.mfa_used,
            "sessionId": self.session_id,
            "org": self.org_id,
            "target": {"type": self.target_type, "id": self.target_id, "repr": self.target_repr},
            "details": self.details,
        }

    def as_export(self) -> dict[str, Any]:
        """Return :meth:`as_record` with the row's ``id`` and its chain fields (``seq``, ``prevHash``, ``hash``)."""
        return {"id": self.pk, **self.as_record(), "seq": self.seq, "prevHash": self.prev_hash, "hash": self.hash}


class AuditChainHead(models.Model):
    """One row per chain: its last ``seq`` and ``hash`` (appends lock this row) and the anchor left by the purge.

    ``chain`` is ``"org:<id>"`` for an org's events and ``"orgless"`` for events without an org. After the retention
    purge deleted events up to ``anchor_seq``, the first remaining event continues from ``anchor_hash``.
    """

    chain = models.CharField(max_length=40, primary_key=True)
    org = models.ForeignKey("twig_auth.Organization", null=True, blank=True, on_delete=models.DO_NOTHING,
                            db_constraint=False, related_name="+")
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)
    anchor_seq = models.BigIntegerField(default=0)
    anchor_hash = models.CharField(max_length=64)
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "twig_audit_chain_heads"

    def __str__(self) -> str:
        return f"{self.chain} @ {self.seq}"
