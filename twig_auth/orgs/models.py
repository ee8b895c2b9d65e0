"""Organization, Membership, Group and GroupMembership."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from twig_auth.orgs.roles import GroupRole, Plan, Role, role_at_least

slug_validator = RegexValidator(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
                                "Use 1–50 lowercase letters, digits and hyphens, not at either end.")


class Organization(models.Model):
    slug = models.SlugField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE)
    settings = models.JSONField(default=dict, blank=True,
                                help_text="Org policy overrides (camelCase document); defaults come from TWIG_AUTH.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "twig_organizations"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_enterprise(self) -> bool:
        return self.plan == Plan.ENTERPRISE


class MembershipQuerySet(models.QuerySet["Membership"]):
    def at_least(self, role: str) -> MembershipQuerySet:
        return self.filter(role__in=[r for r in Role.values if role_at_least(r, role)])

    def active(self) -> MembershipQuerySet:
        """Memberships that are not deactivated: the only ones any credential may act as."""
        return self.filter(deactivated_at__isnull=True)


class Membership(models.Model):
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="twig_memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.USER, db_index=True)
    attributes = models.JSONField(default=dict, blank=True,
                                  help_text="Member attributes for policies, e.g. {\"department\": \"support\"}.")
    created_at = models.DateTimeField(auto_now_add=True)
    role_changed_at = models.DateTimeField(null=True, blank=True)
    access_control = models.JSONField(null=True, blank=True,
                                      help_text='Optional time window: {"allowedHours": {...}, "allowedDays": [...]}.')
    mfa_required_since = models.DateTimeField(
        null=True, blank=True, help_text="When the org's MFA policy first applied to this member (grace starts).")
    last_login_at = models.DateTimeField(null=True, blank=True,
                                         help_text="Last sign-in into this organization (password, token or SSO).")
    deactivated_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Set while the member is deactivated in this org: no session, token or API key acts as them.")
    deactivation_reason = models.CharField(max_length=20, blank=True,
                                           choices=[("inactive", "Inactive"), ("manual", "By an admin")])
    reactivated_at = models.DateTimeField(null=True, blank=True,
                                          help_text="Last reactivation; inactivity is counted from it.")

    objects = MembershipQuerySet.as_manager()

    class Meta:
        db_table = "twig_memberships"
        constraints = [models.UniqueConstraint(fields=["org", "user"], name="twig_membership_unique")]
        ordering = ["org", "user"]

    def __str__(self) -> str:
        return f"{getattr(self.user, 'email', self.user_id)} @ {self.org.slug} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return role_at_least(self.role, minimum)

    @property
    def is_deactivated(self) -> bool:
        return self.deactivated_at is not None


class Group(models.Model):
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=150)
    description = models.CharField(max_length=500, blank=True)
    access_control = models.JSONField(null=True, blank=True,
                                      help_text='Optional time window for the group\'s grants.')
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(Membership, through="GroupMembership", related_name="groups")

    class Meta:
        db_table = "twig_groups"
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="twig_group_name_unique")]
        ordering = ["org", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.org.slug})"


class GroupMembership(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="group_memberships")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="group_memberships")
    role = models.CharField(max_length=20, choices=GroupRole.choices, default=GroupRole.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "twig_group_memberships"
        constraints = [models.UniqueConstraint(fields=["group", "membership"], name="twig_group_member_unique")]

    def __str__(self) -> str:
        return f"{self.membership} in {self.group.name} ({self.role})"
