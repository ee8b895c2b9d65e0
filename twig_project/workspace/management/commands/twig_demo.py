"""Create (or bring up to date) the demo organizations, members, agents, data sources and grants."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from twig_auth.authz import services as authz_services
from twig_auth.authz.models import Grant
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.orgs import services as org_services
from twig_auth.orgs.models import Membership, Organization
from twig_auth.orgs.roles import Plan, Role
from twig_project.workspace import services
from twig_project.workspace.models import Agent, DataSource

DEFAULT_PASSWORD = "TwigDemo-2026!"


@dataclass(frozen=True)
class DemoOrg:
    slug: str
    name: str
    plan: str
    members: tuple[tuple[str, str], ...]
    agents: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    data_sources: tuple[tuple[str, str, dict[str, Any]], ...] = field(default=())
    # (member email, action, resource type, resource name or "*"): what roles alone do not give
    grants: tuple[tuple[str, str, str, str], ...] = ()


SUPPORT_FAQ = {
    "faq": {
        "refund": "Refunds take 5 business days.",
        "password": "Reset your password from the sign-in page with \"Forgot password?\".",
        "opening hours": "Support is open Monday to Friday, 9:00 to 17:00 (New York time).",
    },
    "fallback": "I will pass your question to a human colleague.",
}

DEMO: tuple[DemoOrg, ...] = (
    DemoOrg(
        slug="acme", name="Acme", plan=Plan.ENTERPRISE,
        members=(("owner@acme.test", Role.SUPER_ADMIN), ("admin@acme.test", Role.ADMIN),
                 ("manager@acme.test", Role.MANAGER), ("user@acme.test", Role.USER)),
        agents=(("Support assistant", "Answers customer questions about orders and accounts.", SUPPORT_FAQ),
                ("HR helper", "Answers staff questions about leave and benefits.",
                 {"faq": {"holiday": "You have 25 days of paid leave a year.",
                          "payroll": "Salaries are paid on the last working day of the month."},
                  "fallback": "Please ask hr@acme.test."})),
        data_sources=(("Help center", "website", {"url": "https://help.acme.test"}),
                      ("Shared drive", "google_drive", {"folder": "Support"}),
                      ("#support channel", "slack", {"channel": "support"})),
        grants=(("user@acme.test", "use", "agent", "Support assistant"),  # a plain user sees only what is granted
                ("manager@acme.test", "deploy", "agent", "*")),  # the production approver
    ),
    DemoOrg(
        slug="free-co", name="Free Co", plan=Plan.FREE,
        members=(("owner@free.test", Role.SUPER_ADMIN),),
        agents=(("FAQ bot", "Answers the questions on our FAQ page.",
                 {"faq": {"price": "Free Co is free.", "signup": "Sign up at free.test."}}),),
        data_sources=(("FAQ page", "website", {"url": "https://free.test/faq"}),),
    ),
)


OPERATOR = "owner@acme.test"  # also a Django superuser, to explore the admin


class Command(BaseCommand):
    help = ("Create the demo organizations acme (enterprise) and free-co (free) with their members, agents and "
            "data sources. Idempotent: re-running changes nothing but the password when another is given.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default=DEFAULT_PASSWORD,
                            help=f"Password of every demo account (default {DEFAULT_PASSWORD!r}).")

    def handle(self, *args: Any, password: str, **options: Any) -> None:
        self.verbosity = int(options.get("verbosity", 1))
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError("The password is too weak: " + " ".join(exc.messages)) from exc
        context = RequestContext.system()
        with transaction.atomic():
            summary = [self._org(spec, password, context) for spec in DEMO]
        self._print(summary, password)

    def _org(self, spec: DemoOrg, password: str, context: RequestContext) -> tuple[Organization, list[str]]:
        org = Organization.objects.filter(slug=spec.slug).first()
        if org is None:
            org = org_services.create_organization(slug=spec.slug, name=spec.name, plan=spec.plan, context=context)
            self._note(f"created org {spec.slug} ({spec.plan})")
        elif org.plan != spec.plan:
            org.plan = spec.plan
            org.save(update_fields=["plan"])
            self._note(f"set the plan of {spec.slug} to {spec.plan}")
        emails = []
        for email, role in spec.members:
            user = self._user(email, password)
            membership = Membership.objects.filter(org=org, user=user).first()
            if membership is None:
                org_services.add_member(org=org, user=user, role=role, context=context)
                self._note(f"added {email} to {spec.slug} as {role}")
            elif membership.role != role:
                org_services.change_role(membership=membership, role=role, context=context)
                self._note(f"changed the role of {email} in {spec.slug} to {role}")
            emails.append(f"{email} ({role})")
        for name, description, config in spec.agents:
            if not Agent.objects.filter(org=org, name=name).exists():
                services.create_agent(org=org, name=name, description=description, config=config, context=context)
                self._note(f"created agent {name!r} in {spec.slug}")
        for name, kind, config in spec.data_sources:
            if not DataSource.objects.filter(org=org, name=name).exists():
                services.create_data_source(org=org, name=name, kind=kind, config=config, context=context)
                self._note(f"created data source {name!r} in {spec.slug}")
        for email, action, rtype, resource in spec.grants:
            self._grant(org, email, action, rtype, resource, context)
        return org, emails

    def _grant(self, org: Organization, email: str, action: str, rtype: str, resource: str,
               context: RequestContext) -> None:
        models = {"agent": Agent, "data_source": DataSource}
        rid = "*" if resource == "*" else models[rtype].objects.get(org=org, name=resource).pk
        user = get_user_model().objects.get(email__iexact=email)
        held = Grant.objects.live(clock.now()).filter(org=org, resource_type=rtype, resource_id=rid, action=action,
                                                      user=user)
        if not held.exists():
            authz_services.grant_permission(org=org, resource_type=rtype, resource_id=rid, action=action, user=user,
                                            context=context)
            self._note(f"granted {action!r} on {rtype}:{resource} to {email}")

    def _user(self, email: str, password: str) -> Any:
        User = get_user_model()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=password)
            self._note(f"created user {email}")
        elif not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
            self._note(f"set the password of {email}")
        if email == OPERATOR and not (user.is_staff and user.is_superuser):
            # so a first-time visitor can open the Django admin as well
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
            self._note(f"made {email} a Django admin operator")
        return user

    def _note(self, message: str) -> None:
        if self.verbosity >= 2:
            self.stdout.write(f"  {message}")

    def _print(self, summary: list[tuple[Organization, list[str]]], password: str) -> None:
        shown = password if password == DEFAULT_PASSWORD else "the one given with --password"
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        self.stdout.write("Sign in at /login/ with any of these accounts:")
        for org, emails in summary:
            self.stdout.write(f"  {org.name} ({org.slug}, {org.plan}):")
            for line in emails:
                self.stdout.write(f"    {line}")
        self.stdout.write(f"Password: {shown}")
        for org, _ in summary:
            spec = next(s for s in DEMO if s.slug == org.slug)
            for email, action, rtype, resource in spec.grants:
                self.stdout.write(f"  grant: {email} may {action} {rtype.replace('_', ' ')} {resource}")
        self.stdout.write("API: /api/agents, /api/query, /api/chat; docs at /api/docs.")
