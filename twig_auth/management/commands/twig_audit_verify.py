"""Verify the audit log's hash chains; name the first broken link of each; exit 1 when one is broken."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from twig_auth.audit.chain import chains, verify_chain
from twig_auth.orgs.models import Organization


class Command(BaseCommand):
    help = ("Walk each organization's audit hash chain (and the chain of events without an org) and report the "
            "first broken link: the event id and seq, and whether an event was changed, is missing or was "
            "reordered. Exits 1 if any chain is broken. Prints each chain's head hash: keep it elsewhere to "
            "detect a rewrite of both tables.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", metavar="SLUG", help="Only this organization's chain.")

    def handle(self, *args: Any, org: str | None, **options: Any) -> None:
        names = dict(Organization.objects.values_list("pk", "slug"))
        if org is not None:
            found = Organization.objects.filter(slug=org.strip()[:50]).first()
            if found is None:
                raise CommandError(f"No organization with slug {org[:50]!r}.")
            todo = chains(found.pk)
        else:
            todo = chains()
        broken = 0
        for org_id, head in todo:
            report = verify_chain(org_id, head)
            name = "(events without an organization)" if org_id is None else names.get(org_id, f"org {org_id}")
            if report.ok:
                span = f"seq {report.first_seq}–{report.last_seq}" if report.checked else "no events"
                tail = f", head {head.hash}" if head is not None else ""
                self.stdout.write(f"{name}: OK, {report.checked} events ({span}){tail}")
            else:
                broken += 1
                self.stdout.write(self.style.ERROR(f"{name}: BROKEN at {report.broken}"))
        if broken:
            raise CommandError(f"{broken} chain{'s' if broken != 1 else ''} broken", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"{len(todo)} chain{'s' if len(todo) != 1 else ''} verified"))
