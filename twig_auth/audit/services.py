"""The one function that writes audit events."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models

from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.core import clock
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
    """Store one audit event and return it.

    ``user`` defaults to the context's actor. ``details`` pass through the secret redactor, so a
    caller that slips a password or token in still stores ``[redacted]``.
    """
    context = context or RequestContext()
    subject = user if user is not None else context.actor
    if subject is not None and not getattr(subject, "pk", None):
        subject = None
    safe_details = {k: redact_value(k, v) for k, v in (details or {}).items()}
    entry = AuditEvent(
        timestamp=clock.now(),
        event=str(event),
        org=org,
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
    entry.save()
    logger.debug("audit %s org=%s user=%s", entry.event, entry.org_id, entry.user_id)
    audit_event_recorded.send(sender=AuditEvent, event=entry)
    return entry
