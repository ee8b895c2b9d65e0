"""Create, list and revoke API keys, and flush the usage buffer, from the command line."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from twig_auth.apikeys import format as key_format
from twig_auth.apikeys import services
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.usage import buffer
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import InvalidInput, PermissionDenied, TwigAuthError
from twig_auth.orgs.models import Membership, Organization

MAX_ARG = 500
_PREFIX_RE = re.compile(r"twigsk_(live|test)_([0-9A-Za-z]{12})…?")


def _text(value: str, label: str) -> str:
    """Refuse control characters and absurd lengths before anything reaches the database."""
    if len(value) > MAX_ARG or any(ord(c) < 32 for c in value):
        raise CommandError(f"{label} contains control characters or is too long.")
    return value.strip()


class Command(BaseCommand):
    help = "Manage API keys: create (prints the key once), list (never secrets), revoke, flush usage counts."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke,flush}")
        create = sub.add_parser("create", help="Create a key for a member and print it once.")
        create.add_argument("--org", required=True, metavar="SLUG")
        create.add_argument("--email", required=True, help="The member who owns the key; it acts as them.")
        create.add_argument("--name", required=True)
        create.add_argument("--scopes", required=True, help="Comma-separated: read,write,execute,admin.")
        create.add_argument("--environment", default="live", help="live (default) or test.")
        create.add_argument("--expires-at", default=None, metavar="ISO",
                            help="ISO 8601 date and time, e.g. 2030-01-31T12:00Z (UTC when no offset).")
        listing = sub.add_parser("list", help="List keys (prefix and metadata only).")
        listing.add_argument("--org", default=None, metavar="SLUG")
        revoke = sub.add_parser("revoke", help="Revoke a key now.")
        revoke.add_argument("key", metavar="KEY_ID_OR_PREFIX_OR_PK")
        sub.add_parser("flush", help="Write this process's buffered usage counts to the database.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"_{action}")(**options)

    # -- create --------------------------------------------------------------------------------------
    def _create(self, *, org: str, email: str, name: str, scopes: str, environment: str, expires_at: str | None,
                **_: Any) -> None:
        organization = Organization.objects.filter(slug=_text(org, "--org")).first()
        if organization is None:
            raise CommandError(f"No organization with the slug {org!r}.")
        User = get_user_model()
        email_field = User.get_email_field_name()
        membership = (Membership.objects.select_related("org", "user")
                      .filter(org=organization, **{f"user__{email_field}__iexact": _text(email, "--email")}).first())
        if membership is None:
            raise CommandError(f"{email} is not a member of {organization.slug}.")
        wanted = [s.strip() for s in _text(scopes, "--scopes").split(",") if s.strip()]
        when = self._parse_when(expires_at) if expires_at else None
        try:
            key, plaintext = services.issue_api_key(
                creator=membership, name=name, scopes=wanted, environment=_text(environment, "--environment"),
                expires_at=when, context=RequestContext.system())
        except InvalidInput as exc:
            raise CommandError(_invalid(exc)) from exc
        except PermissionDenied as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(self.style.SUCCESS(f"Created {key.name!r} ({key.prefix}…, id {key.pk}) "
                                             f"for {email} in {organization.slug}."))
        self.stdout.write("The key is shown only this once; store it now:")
        self.stdout.write(plaintext)

    @staticmethod
    def _parse_when(raw: str) -> Any:
        text = _text(raw, "--expires-at")
        try:
            when = parse_datetime(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            when = None
        if when is None:
            raise CommandError(f"--expires-at: {raw!r} is not an ISO 8601 date and time (e.g. 2030-01-31T12:00Z).")
        return timezone.make_aware(when, dt.UTC) if timezone.is_naive(when) else when

    # -- list ----------------------------------------------------------------------------------------
    def _list(self, *, org: str | None, **_: Any) -> None:
        keys: QuerySet[ApiKey] = (ApiKey.objects.select_related("org", "created_by__user")
                                  .defer("hashed_secret").order_by("org__slug", "-created_at"))
        if org is not None:
            if not Organization.objects.filter(slug=_text(org, "--org")).exists():
                raise CommandError(f"No organization with the slug {org!r}.")
            keys = keys.filter(org__slug=org)
        now = clock.now()
        rows = [("ID", "PREFIX", "NAME", "ORG", "CREATED BY", "SCOPES", "STATE", "CREATED", "LAST USED")]
        for key in keys:
            creator = key.created_by.user if key.created_by else None
            rows.append((key.pk, f"{key.prefix}…", key.name, key.org.slug, getattr(creator, "email", "") or "-",
                         ",".join(key.scopes), key.state(now), f"{key.created_at:%Y-%m-%d %H:%M}",
                         f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"))
        if len(rows) == 1:
            self.stdout.write("No API keys.")
            return
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())

    # -- revoke --------------------------------------------------------------------------------------
    def _revoke(self, *, key: str, **_: Any) -> None:
        found = self._find(_text(key, "KEY"))
        if found.revoked_at is not None:
            self.stdout.write(f"{found.prefix}… was already revoked at {found.revoked_at:%Y-%m-%d %H:%M}.")
            return
        try:
            services.revoke_api_key(key=found, context=RequestContext.system())
        except TwigAuthError as exc:  # pragma: no cover - the system actor may revoke any key
            raise CommandError(exc.detail) from exc
        self.stdout.write(self.style.SUCCESS(f"Revoked {found.name!r} ({found.prefix}…, id {found.pk})."))

    @staticmethod
    def _find(raw: str) -> ApiKey:
        """Find a key by primary key, public key id, shown prefix or even the full key."""
        keys = ApiKey.objects.defer("hashed_secret").select_related("org")
        match = _PREFIX_RE.fullmatch(raw)
        if match is None:
            try:
                parsed = key_format.parse(raw)
            except key_format.KeyFormatError:
                parsed = None
            if parsed is not None:
                match = _PREFIX_RE.match(parsed.prefix)
        if match is not None:
            found = keys.filter(environment=match.group(1), key_id=match.group(2)).first()
        else:
            found = keys.filter(pk=raw).first() or keys.filter(key_id=raw).first()
        if found is None:
            raise CommandError(f"No API key matches {raw!r} (give its id, key id or prefix).")
        return found

    # -- flush ---------------------------------------------------------------------------------------
    def _flush(self, **_: Any) -> None:
        rows = buffer.flush()
        self.stdout.write(f"Flushed {rows} usage row{'s' if rows != 1 else ''}.")


def _invalid(exc: InvalidInput) -> str:
    flags = {"name": "--name", "scopes": "--scopes", "environment": "--environment", "expires_at": "--expires-at"}
    return "; ".join(f"{flags.get(field, field)}: {' '.join(messages)}" for field, messages in exc.errors.items())
