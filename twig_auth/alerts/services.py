"""Raise security alerts from audit events: decide, deduplicate, mail the org's admins, audit, signal.

:func:`raise_alerts` runs after the transaction that stored the event commits (see ``receivers``), so a
rolled-back change never alerts, and every path that records one of the events alerts the same way.

Rules (thresholds and windows are settings, see ``docs/access-reviews.md``):

- ``LOGIN_FAILURE``: ``ALERT_FAILED_LOGINS_PER_ACCOUNT`` failures for one email, or
  ``ALERT_FAILED_LOGINS_PER_IP`` from one IP, within ``ALERT_FAILED_LOGIN_WINDOW_SECONDS`` (counted in the audit
  log, so every process counts the same events) → ``login_failures_account`` / ``login_failures_ip``;
- ``ACCOUNT_LOCKED`` → ``account_locked``; ``IP_BLOCKED`` → ``ip_blocked``; ``TOKEN_REUSED`` → ``token_reused``.

An event that names no org (failed logins and lockouts are about an account) alerts every org the account
belongs to. Failures from one IP against addresses that are nobody's account alert the operators instead
(``settings.ADMINS``, org ``None``). Unknown accounts never alert on their own: there is nobody to warn.

Deduplication: at most one alert per (org, kind, subject) per ``ALERT_DEDUPE_SECONDS``, claimed with one
INSERT (unique key) or one conditional UPDATE on ``twig_security_alerts``: exactly one process wins, on SQLite
and PostgreSQL alike. The claim comes before the mail, so an alert is sent at most once (a crash between the
two loses that window's alert rather than sending it twice).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import mail_admins, send_mass_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string

from twig_auth import signals
from twig_auth.alerts.models import SecurityAlert, dedupe_key
from twig_auth.audit.events import Event
from twig_auth.audit.models import AuditEvent
from twig_auth.conf import app_settings
from twig_auth.core import clock
from twig_auth.core.context import RequestContext
from twig_auth.orgs.models import Membership, Organization
from twig_auth.orgs.roles import Role

logger = logging.getLogger("twig_auth.alerts")

ALERT_EVENTS = frozenset({Event.LOGIN_FAILURE, Event.ACCOUNT_LOCKED, Event.IP_BLOCKED, Event.TOKEN_REUSED})

LOGIN_FAILURES_ACCOUNT = "login_failures_account"
LOGIN_FAILURES_IP = "login_failures_ip"
ACCOUNT_LOCKED = "account_locked"
IP_BLOCKED = "ip_blocked"
TOKEN_REUSED = "token_reused"

KIND_TITLES = {
    LOGIN_FAILURES_ACCOUNT: "Repeated failed sign-ins for one account",
    LOGIN_FAILURES_IP: "Repeated failed sign-ins from one IP address",
    ACCOUNT_LOCKED: "An account was locked after failed sign-ins",
    IP_BLOCKED: "Requests were blocked by the IP allowlist",
    TOKEN_REUSED: "A used refresh token was presented again (its token family was revoked)",
}


@dataclass(frozen=True)
class Alert:
    """One alert to raise: its kind, what it is about, the orgs to warn (None: the operators), the count."""

    kind: str
    subject: str
    org_ids: tuple[int | None, ...]
    count: int = 1


def _orgs_of(event: AuditEvent) -> tuple[int, ...]:
    """The event's org, or every org its user belongs to (deactivated memberships too: still their account)."""
    if event.org_id:
        return (event.org_id,)
    if not event.user_id:
        return ()
    return tuple(sorted(set(Membership.objects.filter(user_id=event.user_id).values_list("org_id", flat=True))))


def alerts_for(event: AuditEvent) -> list[Alert]:
    """Return the alerts ``event`` raises (before deduplication)."""
    name = event.event
    if name == Event.LOGIN_FAILURE:
        return _login_failure_alerts(event)
    if name == Event.ACCOUNT_LOCKED:
        orgs = _orgs_of(event)
        return [Alert(ACCOUNT_LOCKED, event.email, orgs)] if orgs and event.email else []
    if name == Event.IP_BLOCKED:
        return [Alert(IP_BLOCKED, event.ip_address or "unknown", (event.org_id,))] if event.org_id else []
    if name == Event.TOKEN_REUSED:
        subject = event.email or f"user {event.user_id}"
        return [Alert(TOKEN_REUSED, subject, (event.org_id,))] if event.org_id else []
    return []


def _login_failure_alerts(event: AuditEvent) -> list[Alert]:
    s = app_settings
    since = event.timestamp - dt.timedelta(seconds=s.ALERT_FAILED_LOGIN_WINDOW_SECONDS)
    failures = AuditEvent.objects.filter(event=Event.LOGIN_FAILURE, timestamp__gte=since,
                                         timestamp__lte=event.timestamp)
    out: list[Alert] = []
    orgs: tuple[int, ...] | None = None
    if event.email:  # counted for unknown addresses too: the same queries whether the account exists or not
        count = failures.filter(email=event.email).count()
        if count >= s.ALERT_FAILED_LOGINS_PER_ACCOUNT and event.user_id:
            orgs = _orgs_of(event)
            if orgs:
                out.append(Alert(LOGIN_FAILURES_ACCOUNT, event.email, orgs, count))
    if event.ip_address:
        count = failures.filter(ip_address=event.ip_address).count()
        if count >= s.ALERT_FAILED_LOGINS_PER_IP:
            orgs = _orgs_of(event) if orgs is None else orgs
            out.append(Alert(LOGIN_FAILURES_IP, event.ip_address, orgs or (None,), count))
    return out


def claim(org_id: int | None, kind: str, subject: str, *, now: dt.datetime | None = None) -> bool:
    """Return True for the one caller (in any process) that may send this alert now: none was sent for
    (org, kind, subject) within ``ALERT_DEDUPE_SECONDS``. Losers count as suppressed."""
    now = now or clock.now()
    key = dedupe_key(org_id, kind, subject)
    window_start = now - dt.timedelta(seconds=app_settings.ALERT_DEDUPE_SECONDS)
    # A row whose last alert left the window: one conditional UPDATE, which only one writer can win (the others
    # re-check the condition after the winner's commit and match nothing).
    if SecurityAlert.objects.filter(key=key, last_sent_at__lte=window_start).update(
            last_sent_at=now, sent_count=F("sent_count") + 1, suppressed=0):
        return True
    try:
        with transaction.atomic():
            SecurityAlert.objects.create(key=key, org_id=org_id, kind=kind, subject=subject[:254],
                                         first_sent_at=now, last_sent_at=now)
        return True
    except IntegrityError:  # sent within the window (or another process just claimed it)
        SecurityAlert.objects.filter(key=key).update(suppressed=F("suppressed") + 1)
        return False


def admin_emails(org_id: int) -> list[str]:
    """Emails of the org's admins and super admins who are active (not deactivated, user active)."""
    members = (Membership.objects.active().filter(org_id=org_id, role__in=[Role.ADMIN, Role.SUPER_ADMIN])
               .select_related("user").order_by("pk"))
    emails = []
    for m in members:
        user = m.user
        email = getattr(user, user.get_email_field_name(), "") or ""
        if email and getattr(user, "is_active", True):
            emails.append(email)
    return sorted(set(emails))


def raise_alerts(event: AuditEvent) -> int:
    """Raise what ``event`` calls for; return how many alerts were sent. Never raises: an alert that cannot
    be sent is logged, never a reason for the request that recorded the event to fail."""
    if not app_settings.ALERTS_ENABLED or event.event not in ALERT_EVENTS:
        return 0
    sent = 0
    try:
        for alert in alerts_for(event):
            for org_id in alert.org_ids:
                if claim(org_id, alert.kind, alert.subject):
                    _notify(org_id, alert, event)
                    sent += 1
    except Exception:  # noqa: BLE001  (alerting is best effort; the event itself is stored)
        logger.exception("security alert for audit event %s failed", event.pk)
    return sent


def _notify(org_id: int | None, alert: Alert, event: AuditEvent) -> None:
    org = Organization.objects.filter(pk=org_id).first() if org_id else None
    if org_id and org is None:
        return  # deleted meanwhile
    title = KIND_TITLES.get(alert.kind, alert.kind)
    context = {
        "org": org, "title": title, "kind": alert.kind, "subject": alert.subject, "count": alert.count,
        "event": event, "window_minutes": app_settings.ALERT_FAILED_LOGIN_WINDOW_SECONDS // 60,
        "dedupe_minutes": app_settings.ALERT_DEDUPE_SECONDS // 60, "base_url": app_settings.SSO_BASE_URL or "",
    }
    subject_line = f"Security alert for {org.name if org else 'your Twig deployment'}: {title} ({alert.subject})"
    subject_line = " ".join(subject_line.split())[:200]  # no header injection through a subject with newlines
    body = render_to_string("twig_auth/alerts/email.txt", context)
    delivered = True
    if org is not None:
        recipients = admin_emails(org.pk)
        try:
            if recipients:
                send_mass_mail([(subject_line, body, None, [to]) for to in recipients], fail_silently=False)
        except Exception:  # noqa: BLE001  (SMTP down: the audit event says so)
            delivered = False
            logger.exception("could not mail the security alert %s to the admins of org %s", alert.kind, org.pk)
    else:
        recipients = [email for _, email in getattr(settings, "ADMINS", [])]
        try:
            if recipients:
                mail_admins(subject_line, body, fail_silently=False)
        except Exception:  # noqa: BLE001
            delivered = False
            logger.exception("could not mail the security alert %s to the operators", alert.kind)
    from twig_auth.audit.services import record

    record(Event.SECURITY_ALERT_SENT, context=RequestContext.system(), org=org, email="",
           details={"kind": alert.kind, "subject": alert.subject, "count": alert.count, "trigger": event.event,
                    "triggerId": event.pk, "recipients": len(recipients), "delivered": delivered})
    for receiver, result in signals.security_alert_raised.send_robust(
            sender=SecurityAlert, org=org, kind=alert.kind, subject=alert.subject, event=event, count=alert.count,
            recipients=recipients):
        if isinstance(result, Exception):
            logger.error("security_alert_raised receiver %r failed: %r", receiver, result)


def summary(org: Any, limit: int = 20) -> list[SecurityAlert]:
    """The org's most recent alerts (for the access-review page)."""
    return list(SecurityAlert.objects.filter(org=org).order_by("-last_sent_at")[:limit])
