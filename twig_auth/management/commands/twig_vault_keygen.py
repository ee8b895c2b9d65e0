"""Print a new AES-256 vault key line for TWIG_AUTH["VAULT_KEYS"]."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from twig_auth.conf import app_settings
from twig_auth.vault.ciphers import format_key, new_key, parse_key


class Command(BaseCommand):
    help = ("Print a new vault key as \"<version>:<base64>\". The version is one above the highest configured "
            "unless --key-version is given. Put it FIRST in VAULT_KEYS, keep the old keys after it, then run "
            "twig_vault_rotate.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--key-version", dest="key_version", type=int, default=None, help="Version number to use.")

    def handle(self, *args: Any, key_version: int | None, **options: Any) -> None:
        if key_version is None:
            versions = []
            for line in app_settings.VAULT_KEYS or []:
                try:
                    versions.append(parse_key(line).version)
                except ValueError:
                    continue
            key_version = max(versions, default=0) + 1
        self.stdout.write(format_key(new_key(key_version)))
