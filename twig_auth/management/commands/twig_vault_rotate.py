"""Re-encrypt every stored secret under the newest vault key (resumable, safe while serving)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from twig_auth.vault.keys import keyring
from twig_auth.vault.rotation import census, rotate


class Command(BaseCommand):
    help = ("Re-encrypt secrets held for users under the first key of VAULT_KEYS. --check only counts values per "
            "key version and exits 1 while any is on an older key.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="Count values per key version; change nothing.")
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per transaction (default 500).")

    def handle(self, *args: Any, check: bool, batch_size: int, **options: Any) -> None:
        if not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be between 1 and 10000.")
        newest = keyring().current.version
        if check:
            behind = 0
            for report in census():
                counts = ", ".join(f"key {v}: {n}" for v, n in sorted(report.by_version.items())) or "no values"
                self.stdout.write(f"{report.label}: {counts}")
                behind += sum(n for v, n in report.by_version.items() if v != newest)
            if behind:
                raise CommandError(f"{behind} value(s) are not on key {newest} yet: run twig_vault_rotate.")
            self.stdout.write(self.style.SUCCESS(f"Every stored value is on key {newest}."))
            return
        failed = 0
        for report in rotate(batch_size=batch_size, progress=self.stdout.write if options["verbosity"] > 1 else None):
            line = f"{report.label}: {report.rotated} re-encrypted under key {newest}"
            if report.changed_meanwhile:
                line += f", {report.changed_meanwhile} changed meanwhile (already on key {newest})"
            self.stdout.write(line)
            if report.failed:
                failed += len(report.failed)
                self.stderr.write(f"{report.label}: cannot decrypt {len(report.failed)} value(s), primary keys "
                                  + ", ".join(report.failed[:20]) + (" …" if len(report.failed) > 20 else ""))
        if failed:
            raise CommandError(f"{failed} value(s) could not be decrypted with any configured key; they were left "
                               "as they are.")
        self.stdout.write(self.style.SUCCESS("Done."))
