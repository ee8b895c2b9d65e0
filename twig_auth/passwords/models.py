"""Lockout counters when no Redis is configured: one row per counted login identity."""

from __future__ import annotations

from django.db import models


class LoginThrottle(models.Model):
    """Failed-login counter for one identity (a digest of the normalized email).

    Times are epoch milliseconds from the clock seam, the same representation the Redis store uses.
    """

    key = models.CharField(max_length=64, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_ends_ms = models.BigIntegerField(default=0)
    locked_until_ms = models.BigIntegerField(default=0)

    class Meta:
        db_table = "twig_login_throttles"

    def __str__(self) -> str:
        return f"{self.key[:12]}… ({self.count})"
