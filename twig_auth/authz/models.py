"""Grant, Policy and SodRule: what the decision API reads besides roles.

- :class:`Grant`: one action on one resource (or ``*``: every resource of the type in the org) for one user
  or one group, optionally until ``expires_at`` and within a time window (``access_control``).
- :class:`Policy`: one ABAC policy document (enterprise orgs), validated by
  :mod:`twig_auth.authz.policy_language` before it is stored.
- :class:`SodRule`: two permissions (``"agent:edit"``, ``"agent:deploy"``) that one member may not hold together.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from twig_auth.core.crypto import opaque_id


def new_grant_id() -> str:
    return opaque_id("grt")


def new_policy_id() -> str:
    return opaque_id("pol")


class GrantQuerySet(models.QuerySet["Grant"]):
    def live(self, now: object) -> GrantQuerySet:
        """Grants not yet expired at ``now`` (time windows are checked in Python, at decision time)."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class Grant(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_grant_id, editable=False)
    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="grants")
    resource_type = models.CharField(max_length=40)
    resource_id = models.CharField(max_length=64, help_text='The resource\'s id, or "*" for all of its type.')
    action = models.CharField(max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="twig_grants")
    group = models.ForeignKey("twig_auth.Group", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="grants")
    expires_at = models.DateTimeField(null=True, blank=True)
    access_control = models.JSONField(null=True, blank=True,
                                      help_text='Optional time window: {"allowedHours": {...}, "allowedDays": [...]}.')
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField()

    objects = GrantQuerySet.as_manager()

    class Meta:
        db_table = "twig_grants"
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["org", "resource_type", "resource_id"], name="twig_grant_resource"),
                   models.Index(fields=["org", "user"], name="twig_grant_user"),
                   models.Index(fields=["org", "group"], name="twig_grant_group")]
        constraints = [models.CheckConstraint(
            condition=(Q(user__isnull=False) & Q(group__isnull=True)) | (Q(user__isnull=True) & Q(group__isnull=False)),
            name="twig_grant_one_grantee")]

    def __str__(self) -> str:
        who = f"group {self.group_id}" if self.group_id else f"user {self.user_id}"
        return f"{self.action} on {self.resource_type}:{self.resource_id} to {who}"

    @property
    def resource(self) -> str:
        return f"{self.resource_type}:{self.resource_id}"


class Policy(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_policy_id, editable=False)
    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="policies")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    document = models.JSONField(help_text='{"policy": {"resource", "action", "effect", "conditions": [...]}}')
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        db_table = "twig_policies"
        ordering = ["org", "name"]
        verbose_name_plural = "policies"
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="twig_policy_name_unique")]

    def __str__(self) -> str:
        return self.name


class SodRule(models.Model):
    """Separation of duties: no member may hold both permissions (``resource_type:action`` each)."""

    org = models.ForeignKey("twig_auth.Organization", on_delete=models.CASCADE, related_name="sod_rules")
    first = models.CharField(max_length=81, help_text='A permission such as "agent:edit".')
    second = models.CharField(max_length=81, help_text='The permission that conflicts with it, e.g. "agent:deploy".')
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "twig_sod_rules"
        ordering = ["org", "first", "second"]
        verbose_name = "separation-of-duties rule"
        constraints = [models.UniqueConstraint(fields=["org", "first", "second"], name="twig_sod_unique")]

    def __str__(self) -> str:
        return f"{self.first} ✕ {self.second}"
