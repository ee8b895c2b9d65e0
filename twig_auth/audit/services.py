"""The one function that writes audit events (:func:`record`), and its coalescing form for reads
(:func:`record_access`)."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import models

from twig_auth.audit import chain
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.core.coalesce import first_in_window
from twig_auth.core.context import RequestContext
from twig_auth.core.logging import redact_value
from twig_auth.signals import audit_event_recorded

logger = logging.getLogger("twig_auth.audit")


def _email_of(user: Any) -> str:
    if user is None:
        return ""
    field = getattr(user, "EMAIL_FIELD", "email")
    return str(getattr(user, field, "") or "")


def record(
    event: Event | str,
    *,
    context: RequestContext | None = None,
    org: Any = None,
    user: Any = None,
    email: str | None = None,
    target: models.Model | None = None,
    details: dict[str, Any] | None = None,
    mfa_used: bool | None = None,
) -> AuditEvent:
    """Store one audit event, appended to its org's hash chain, and return it.

    ``user`` defaults to the context's actor. ``details`` pass through the secret redactor, so a
    caller that slips a password or token in still stores ``[redacted]``. The event is written in the
    caller's transaction (if any): it commits or rolls back with the change it records, and an error here
    fails that transaction rather than leaving a change without its event. ``org`` is an organization or its pk.
    """
    context = context or RequestContext()
    subject = user if user is not None else context.actor
    if subject is not None and not getattr(subject, "pk", None):
        subject = None
    # the JSON round trip stores (and hashes) exactly what will be read back
    safe_details = json.loads(json.dumps({str(k): redact_value(k, v) for k, v in (details or {}).items()}))
    # ``org``: an Organization, or its pk (a credential that carries the org id need not load the row)
    where = {"org": org} if org is None or isinstance(org, models.Model) else {"org_id": org}
    entry = AuditEvent(
        timestamp=clock.now(),
        event=str(event),
        **where,
        user=subject,
        email=(email if email is not None else _email_of(subject))[:254],
        ip_address=context.ip,
        user_agent=context.user_agent[:512],
        mfa_used=context.mfa_used if mfa_used is None else mfa_used,
        session_id=context.session_id[:64],
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        details=safe_details,
    )
    entry.ip_address = AuditEvent._meta.get_field("ip_address").get_prep_value(entry.ip_address) or None
    chain.append(entry)
    logger.debug("audit %s org=%s user=%s", entry.event, entry.org_id, entry.user_id)
    audit_event_recorded.send(sender=AuditEvent, event=entry)
    return entry


# --- reads: RESOURCE_ACCESS, coalesced --------------------------------------------------------------------

def record_access(
    *,
    context: RequestContext,
    org: Any,
    action: str,
    target: models.Model | None = None,
    resource: str | None = None,
    credential: str = "",
    key_id: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent | None:
    """Record ``RESOURCE_ACCESS`` for a read of ``target`` (or of a listing named ``resource``), at most once per
    (org, actor, credential, resource, action) every ``AUDIT_ACCESS_COALESCE_SECONDS``; return the event, or None
    when coalesced.

    ``credential`` names what authenticated the read (``"api_key"`` with the key's ``key_id``, ``"access_token"``,
    ``"session"``), so each of a user's keys shows up. Windows are aligned on the clock (``clock.now()``), so a
    read just after a window boundary is recorded again. A window of 0 records every read.
    """
    resource_id = (f"{target._meta.label_lower}:{target.pk}" if target is not None else resource) or "-"
    window = app_settings.AUDIT_ACCESS_COALESCE_SECONDS
    extra: dict[str, Any] = {"action": action}
    if target is None and resource:
        extra["resource"] = resource
    if window:
        actor = getattr(context.actor, "pk", None)
        slot = int(clock.now().timestamp()) // window
        key = f"twig:ra:{getattr(org, 'pk', org)}:{actor}:{credential}:{key_id}:{resource_id}:{action}:{slot}"
        if not first_in_window(key[:250], window, what="audit access coalescing", slotted=True):
            return None
        extra["coalesceSeconds"] = window
    if credential:
        extra["credential"] = credential
    if key_id:
        extra["keyId"] = key_id
    return record(Event.RESOURCE_ACCESS, context=context, org=org, target=target, details={**extra, **(details or {})})
