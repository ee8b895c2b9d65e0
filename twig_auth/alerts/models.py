"""SecurityAlert: one row per (org, kind, subject), the deduplication record of the alerts sent for it."""

from __future__ import annotations

import hashlib

from django.db import models


def dedupe_key(org_id: int | None, kind: str, subject: str) -> str:
    """The unique key of (org, kind, subject); a digest, so a NULL org is one value on every database."""
    return hashlib.sha256(f"{org_id or 0}\x1f{kind}\x1f{subject}".encode()).hexdigest()


class SecurityAlert(models.Model):
    """When an alert was last sent for one org, kind and subject, and how many were held back since.

    The unique ``key`` makes the claim atomic across processes: an INSERT, or a conditional UPDATE of a row
    whose last alert is older than the window; whoever's write succeeds sends, everyone else only counts."""

    key = models.CharField(max_length=64, unique=True)
    org = models.ForeignKey("twig_auth.Organization", null=True, blank=True, on_delete=models.CASCADE,
                            related_name="+", help_text="None: an operator alert (mailed to settings.ADMINS).")
    kind = models.CharField(max_length=40)
    subject = models.CharField(max_length=254, help_text="The account (email) or IP address the alert is about.")
    first_sent_at = models.DateTimeField()
    last_sent_at = models.DateTimeField(db_index=True)
    sent_count = models.PositiveIntegerField(default=1)
    suppressed = models.PositiveIntegerField(default=0, help_text="Alerts held back since the last one was sent.")

    class Meta:
        db_table = "twig_security_alerts"
        ordering = ["-last_sent_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} (org {self.org_id or '-'})"
