"""Delete audit events older than each org's retention (``auditRetentionDays``); schedule it daily."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from twig_auth.audit.retention import purge
from twig_auth.core.context import RequestContext
from twig_auth.orgs.models import Organization


class Command(BaseCommand):
    help = ("Delete audit events older than each organization's retention (auditRetentionDays; AUDIT_RETENTION_DAYS "
            "for events without an org), in batches, keeping each hash chain verifiable; one AUDIT_PURGED event "
            "per chain that lost events.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", metavar="SLUG", help="Only this organization's events.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                            help="Events per transaction (default: AUDIT_PURGE_BATCH_SIZE).")

    def handle(self, *args: Any, org: str | None, dry_run: bool, batch_size: int | None, **options: Any) -> None:
        organization = None
        if org is not None:
            organization = Organization.objects.filter(slug=org.strip()[:50]).first()
            if organization is None:
                raise CommandError(f"No organization with slug {org[:50]!r}.")
        if batch_size is not None and not 1 <= batch_size <= 100_000:
            raise CommandError("--batch-size must be between 1 and 100000.")
        results = purge(org=organization, dry_run=dry_run, batch_size=batch_size, context=RequestContext.system())
        verb = "would delete" if dry_run else "deleted"
        total = 0
        for result in results:
            name = result.org.slug if result.org is not None else \
                ("(events without an organization)" if result.chain == "orgless" else f"{result.chain} (deleted org)")
            total += result.deleted
            self.stdout.write(f"{name}: {verb} {result.deleted} event{'s' if result.deleted != 1 else ''} older than "
                              f"{result.retention_days} days (before {result.cutoff:%Y-%m-%d %H:%M:%S} UTC)")
        self.stdout.write(self.style.SUCCESS(f"{verb} {total} event{'s' if total != 1 else ''} in total"))
