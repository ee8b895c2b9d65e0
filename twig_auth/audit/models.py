"""AuditEvent: append-only. Rows are inserted by :func:`twig_auth.audit.services.record` and never changed."""

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

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        db_table = "twig_audit_events"
        ordering = ["-timestamp", "-id"]
        indexes = [models.Index(fields=["org", "-timestamp"], name="twig_audit_org_time")]

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
