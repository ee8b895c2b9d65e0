"""RefreshToken (table ``twig_refresh_tokens``): one row per issued refresh token, grouped in families."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RefreshToken(models.Model):
    """A refresh token, stored as the SHA-256 of its random value (high entropy: a fast hash is right).

    Every login starts a ``family``; each refresh consumes one row (``used_at``) and adds the next
    (``replaced_by``). Presenting a used row again revokes the whole family.
    """

    id = models.CharField(primary_key=True, max_length=32, editable=False)
    family = models.CharField(max_length=32, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="twig_refresh_tokens")
    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey("twig_auth.Membership", on_delete=models.CASCADE, related_name="refresh_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        db_table = "twig_refresh_tokens"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"refresh token {self.id} (family {self.family})"
