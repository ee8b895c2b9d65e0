"""Unlock accounts locked by too many failed sign-ins."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from twig_auth.passwords.lockout import is_locked
from twig_auth.passwords.services import unlock


class Command(BaseCommand):
    help = "Unlock the sign-in of one or more accounts by email (audited as ACCOUNT_UNLOCKED)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("emails", nargs="+", metavar="EMAIL")
        parser.add_argument("--check", action="store_true", help="Only report whether each is locked.")

    def handle(self, *args: Any, emails: list[str], check: bool, **options: Any) -> None:
        for email in emails:
            if check:
                left = is_locked(email)
                self.stdout.write(f"{email}: " + (f"locked, {left}s left" if left else "not locked"))
                continue
            was = unlock(email=email)
            self.stdout.write(self.style.SUCCESS(f"{email}: unlocked") if was else f"{email}: was not locked")
