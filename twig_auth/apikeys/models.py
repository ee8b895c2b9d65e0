"""ApiKey (table ``api_keys``) and its usage counters."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from twig_auth.apikeys.scopes import Scope


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    id = models.CharField(primary_key=True, max_length=32, editable=False)
    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="api_keys")
    created_by = models.ForeignKey("twig_auth.Membership", null=True, on_delete=models.SET_NULL,
                                   related_name="api_keys", help_text="A key stops working without its creator.")
    name = models.CharField(max_length=100)
    scopes = models.JSONField(default=list)
    environment = models.CharField(max_length=4, choices=[("live", "Live"), ("test", "Test")])
    key_id = models.CharField(max_length=16, unique=True)
    hashed_secret = models.CharField(max_length=128)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    rolled_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="rolled_to")
    allowed_ips = models.JSONField(default=list, blank=True,
                                   help_text="CIDR ranges this key may be used from, on top of the org's "
                                             "allowlist; empty: the org's allowlist only.")

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        db_table = "api_keys"
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def prefix(self) -> str:
        return f"twigsk_{self.environment}_{self.key_id}"

    def state(self, now: object) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:  # type: ignore[operator]
            return "expired"
        return "active"

    @property
    def scope_labels(self) -> list[str]:
        return [Scope(s).label for s in self.scopes if s in Scope.values]


class ApiKeyUsage(models.Model):
    """Requests per key, day, endpoint and status; written in batches, never on the request path."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usage")
    day = models.DateField()
    endpoint = models.CharField(max_length=200)
    status = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "api_key_usage"
        constraints = [models.UniqueConstraint(fields=["key", "day", "endpoint", "status"],
                                               name="api_key_usage_unique")]
        ordering = ["-day", "endpoint"]

    def __str__(self) -> str:
        return f"{self.key_id} {self.day} {self.endpoint} {self.status}: {self.count}"
