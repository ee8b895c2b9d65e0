"""Issue, revoke and roll API keys. Each workflow is one transaction and one audit event."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.db import IntegrityError, transaction

from twig_auth.apikeys import format as key_format
from twig_auth.apikeys import verification
from twig_auth.apikeys.hashers import get_hasher
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.scopes import ALL_SCOPES, allowed_for
from twig_auth.audit.events import Event
from twig_auth.audit.services import record
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.core.crypto import opaque_id
from twig_auth.exceptions import InvalidInput, NotFound, PermissionDenied
from twig_auth.orgs.models import Membership
from twig_auth.orgs.policy import _cidrs
from twig_auth.orgs.roles import Role

MAX_NAME = 100
_KEY_PK_RE = re.compile(r"[A-Za-z0-9_]{1,32}")
MAX_LIFETIME_DAYS = 3650


def clean_allowed_ips(allowed_ips: Any, *, org: Any, check_plan: bool = True) -> list[str]:
    """Return a key's IP allowlist with whitespace trimmed; raise :class:`InvalidInput` (field ``allowed_ips``)
    under the org settings' ``ipAllowlist`` rules, or :class:`PermissionDenied` for a non-empty list outside the
    enterprise plan (``check_plan=False`` when a roll carries over an existing restriction)."""
    if allowed_ips is None:
        return []
    items = allowed_ips
    if isinstance(items, list | tuple):
        items = [item.strip() if isinstance(item, str) else item for item in items]
    problem = _cidrs(items)
    if problem:
        raise InvalidInput({"allowed_ips": [problem]})
    if items and check_plan and not org.is_enterprise:
        raise PermissionDenied("Per-key IP allowlists require the enterprise plan.", fields=["allowed_ips"])
    return list(items)


def validate_request(*, creator: Membership, name: Any, scopes: Any, environment: Any,
                     expires_at: Any = None) -> tuple[str, list[str], str, dt.datetime | None]:
    """Check a key request field by field; raise :class:`InvalidInput` naming each bad field, or
    :class:`PermissionDenied` when the scopes exceed what the creator's role allows."""
    errors: dict[str, list[str]] = {}
    if not isinstance(name, str) or not name.strip():
        errors["name"] = ["Give the key a name."]
    elif len(name.strip()) > MAX_NAME or "\x00" in name:
        errors["name"] = [f"Use at most {MAX_NAME} characters and no control characters."]
    if (not isinstance(scopes, list | tuple) or not scopes
            or not all(isinstance(s, str) and s in ALL_SCOPES for s in scopes)):
        errors["scopes"] = [f"Choose one or more of {', '.join(ALL_SCOPES)}."]
    if environment not in key_format.ENVIRONMENTS:
        errors["environment"] = ["Choose live or test."]
    now = clock.now()
    if expires_at is not None and not isinstance(expires_at, dt.datetime):
        errors["expires_at"] = ["Give a date and time."]
    elif expires_at is not None and not now < expires_at <= now + dt.timedelta(days=MAX_LIFETIME_DAYS):
        errors["expires_at"] = ["Choose a moment in the future (at most ten years ahead)."]
    if errors:
        raise InvalidInput(errors)
    wanted = sorted(set(scopes), key=ALL_SCOPES.index)
    beyond = set(wanted) - allowed_for(creator.role)
    if beyond:
        raise PermissionDenied(f"Your role ({creator.role}) cannot create keys with the "
                               f"{', '.join(sorted(beyond))} scope.", fields=["scopes"])
    return name.strip(), wanted, environment, expires_at


def issue_api_key(*, creator: Membership, name: Any, scopes: Any, environment: Any, expires_at: Any = None,
                  context: RequestContext | None = None, rolled_from: ApiKey | None = None,
                  allowed_ips: Any = None) -> tuple[ApiKey, str]:
    """Create a key for ``creator`` and return it with its plaintext (shown once, never stored).

    ``allowed_ips`` (CIDR ranges, enterprise) narrows where the key works, on top of the org's allowlist."""
    context = context or RequestContext.system()
    name, scopes, environment, expires_at = validate_request(
        creator=creator, name=name, scopes=scopes, environment=environment, expires_at=expires_at)
    allowed_ips = clean_allowed_ips(allowed_ips, org=creator.org, check_plan=rolled_from is None)
    hasher = get_hasher()
    for _ in range(3):  # a key-id collision (1 in 62**12) is retried, not reported
        generated = key_format.generate(environment)
        key = ApiKey(id=opaque_id("key"), org_id=creator.org_id, created_by=creator, name=name, scopes=scopes,
                     environment=environment, key_id=generated.key_id, hashed_secret=hasher.hash(generated.secret),
                     created_at=clock.now(), expires_at=expires_at, rolled_from=rolled_from, allowed_ips=allowed_ips)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    key.save(force_insert=True)
            except IntegrityError:
                continue
            # not in the retried insert: an audit failure fails the issue, it is no key-id collision
            record(Event.API_KEY_CREATED, context=context, org=creator.org, target=key, details={
                "name": name, "prefix": key.prefix, "scopes": scopes, "environment": environment,
                "expires_at": expires_at.isoformat() if expires_at else None,
                "rolled_from": rolled_from.pk if rolled_from else None, "allowed_ips": allowed_ips})
        return key, generated.full
    raise RuntimeError("Could not allocate a unique key id.")  # pragma: no cover


def _may_manage(key: ApiKey, context: RequestContext) -> bool:
    actor = context.actor
    if actor is None or getattr(actor, "is_superuser", False):
        return True
    mine = Membership.objects.filter(org_id=key.org_id, user=actor).first()
    if mine is None:
        return False
    return mine.pk == key.created_by_id or mine.has_role(Role.ADMIN)


def get_manageable(*, org_id: int, key_pk: str, context: RequestContext) -> ApiKey:
    """Return the org's key ``key_pk`` if the actor may manage it; other orgs' keys are not found."""
    key_pk = str(key_pk)
    if not _KEY_PK_RE.fullmatch(key_pk):  # e.g. a NUL byte, which PostgreSQL refuses in the query itself
        raise NotFound("No such API key.")
    key = ApiKey.objects.select_related("created_by", "org").filter(org_id=org_id, pk=key_pk).first()
    if key is None:
        raise NotFound("No such API key.")
    if not _may_manage(key, context):
        raise PermissionDenied("Only the key's creator or an admin can manage this key.")
    return key


def revoke_api_key(*, key: ApiKey, context: RequestContext | None = None) -> ApiKey:
    """Revoke ``key`` now: the database row, then the cache, before returning."""
    context = context or RequestContext.system()
    if not _may_manage(key, context):
        raise PermissionDenied("Only the key's creator or an admin can revoke this key.")
    with transaction.atomic():
        key = ApiKey.objects.select_for_update(of=("self",)).select_related("org").get(pk=key.pk)
        if key.revoked_at is None:
            key.revoked_at = clock.now()
            key.revoked_by = context.actor if getattr(context.actor, "pk", None) else None
            key.save(update_fields=["revoked_at", "revoked_by"])
            record(Event.API_KEY_REVOKED, context=context, org=key.org, target=key,
                   details={"name": key.name, "prefix": key.prefix})
    verification.invalidate([key.key_id], revoked=True)
    return key


def roll_api_key(*, key: ApiKey, expires_in: Any, context: RequestContext | None = None) -> tuple[ApiKey, str]:
    """Issue a successor of ``key``; the old key keeps working for ``expires_in`` seconds (0: revoked now)."""
    context = context or RequestContext.system()
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 0 <= expires_in <= 30 * 86400:
        raise InvalidInput({"expires_in": ["Give the seconds the old key keeps working (0 to 2592000)."]})
    if not _may_manage(key, context):
        raise PermissionDenied("Only the key's creator or an admin can roll this key.")
    with transaction.atomic():
        old = ApiKey.objects.select_for_update(of=("self",)).select_related("created_by__org", "org").get(pk=key.pk)
        if old.state(clock.now()) != "active":
            raise InvalidInput({"id": ["Only an active key can be rolled."]})
        if old.created_by is None:
            raise InvalidInput({"id": ["The key's creator has left the organization."]})
        new, plaintext = issue_api_key(creator=old.created_by, name=old.name, scopes=old.scopes,
                                       environment=old.environment, expires_at=old.expires_at, context=context,
                                       rolled_from=old, allowed_ips=old.allowed_ips)
        if expires_in == 0:
            old.revoked_at = clock.now()
            old.revoked_by = context.actor if getattr(context.actor, "pk", None) else None
            old.save(update_fields=["revoked_at", "revoked_by"])
            record(Event.API_KEY_REVOKED, context=context, org=old.org, target=old,
                   details={"name": old.name, "prefix": old.prefix, "rolled_to": new.pk})
        else:
            until = clock.now() + dt.timedelta(seconds=expires_in)
            old.expires_at = min(until, old.expires_at) if old.expires_at else until
            old.save(update_fields=["expires_at"])
    verification.invalidate([old.key_id], revoked=expires_in == 0)
    return new, plaintext


def set_allowed_ips(*, key: ApiKey, allowed_ips: Any, context: RequestContext | None = None) -> ApiKey:
    """Replace the key's own IP allowlist (empty: the org's list only); the cached verification is dropped
    at once, so every worker applies the new list on its next request."""
    context = context or RequestContext.system()
    if not _may_manage(key, context):
        raise PermissionDenied("Only the key's creator or an admin can change this key.")
    with transaction.atomic():
        key = ApiKey.objects.select_for_update(of=("self",)).select_related("org").get(pk=key.pk)
        # Clearing a list works on any plan (a downgraded org can lift it); setting one needs enterprise.
        cleaned = clean_allowed_ips(allowed_ips, org=key.org)
        if key.revoked_at is not None:
            raise InvalidInput({"id": ["The key is revoked."]})
        old = list(key.allowed_ips or [])
        if cleaned != old:
            key.allowed_ips = cleaned
            key.save(update_fields=["allowed_ips"])
            record(Event.API_KEY_UPDATED, context=context, org=key.org, target=key,
                   details={"name": key.name, "key_id": key.key_id, "allowed_ips": cleaned, "previous": old})
    verification.invalidate([key.key_id])
    return key
