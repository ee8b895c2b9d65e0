"""UserSession: the server-side record a ``twig_session`` cookie names. Revoking it ends the session."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class UserSessionQuerySet(models.QuerySet["UserSession"]):
    def live(self, now: object) -> UserSessionQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class UserSession(models.Model):
    session_key = models.CharField(primary_key=True, max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="twig_sessions")
    org = models.ForeignKey("twig_auth.Organization", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    device_label = models.CharField(max_length=120, blank=True)
    mfa_used = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=40, blank=True)

    objects = UserSessionQuerySet.as_manager()

    class Meta:
        db_table = "twig_sessions"
        indexes = [models.Index(fields=["user", "revoked_at"], name="twig_sessions_user_live")]
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.device_label or 'session'} ({self.session_key[:8]}…)"
