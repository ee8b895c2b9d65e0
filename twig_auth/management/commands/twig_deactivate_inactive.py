"""Deactivate members inactive longer than their org's accessReview.deactivateAfterDays. Schedule it daily."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from twig_auth.core import clock
from twig_auth.orgs.models import Organization
from twig_auth.reviews.services import deactivate_inactive, deactivation_days


class Command(BaseCommand):
    help = ("Deactivate, per organization, members with no login, API-key use or token refresh for the org's "
            "accessReview.deactivateAfterDays (orgs without it are skipped; super admins never). Reversible: "
            "an admin reactivates them on Settings > Security > Access review. Audited as MEMBER_DEACTIVATED.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="List who would be deactivated; change nothing.")
        parser.add_argument("--org", metavar="SLUG", help="Only this organization.")

    def handle(self, *args: Any, dry_run: bool, org: str | None, **options: Any) -> None:
        orgs = Organization.objects.order_by("slug")
        if org is not None:
            orgs = orgs.filter(slug=org)
            if not orgs.exists():
                raise CommandError(f"No organization with slug {org[:60]!r}.")
        now = clock.now()
        total = 0
        verb, summary_verb = ("would deactivate", "to deactivate") if dry_run else ("deactivated", "deactivated")
        for o in orgs.iterator():
            days = deactivation_days(o)
            if not days:
                if org is not None:
                    self.stdout.write(f"{o.slug}: inactive-member deactivation is off "
                                      "(accessReview.deactivateAfterDays is not set)")
                continue
            done = deactivate_inactive(o, dry_run=dry_run, now=now)
            for c in done:
                self.stdout.write(f"{o.slug}: {verb} {c.email} ({c.membership.role}), inactive for "
                                  f"{c.inactive_days} days (since {c.inactive_since:%Y-%m-%d})")
            self.stdout.write(f"{o.slug}: {len(done)} member{'s' if len(done) != 1 else ''} {summary_verb} "
                              f"(limit {days} days)")
            total += len(done)
        summary = f"{total} member{'s' if total != 1 else ''} {summary_verb}."
        self.stdout.write(self.style.SUCCESS(summary) if total and not dry_run else summary)
