"""Raise security alerts for every path that records an alerting audit event, once its transaction commits.

Inside a request the work waits until the response has been sent (``request_finished``): the failed sign-in
that completes a burst, or locks an account, answers exactly as fast as any other, whether an alert goes out
(to a slow mail server, for an account that exists) or not. So alerts add no timing difference between known
and unknown accounts. Outside a request (commands, tasks) they are raised at once.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import transaction
from django.dispatch import receiver

from twig_auth.alerts import services
from twig_auth.conf import app_settings
from twig_auth.signals import audit_event_recorded

_local = threading.local()


def _dispatch(event: Any) -> None:
    pending = getattr(_local, "pending", None)
    if pending is None:
        services.raise_alerts(event)
    else:
        pending.append(event)


@receiver(audit_event_recorded, dispatch_uid="twig_auth.alerts.audit_event_recorded")
def _event_recorded(sender: Any, event: Any, **kwargs: Any) -> None:
    if event.event in services.ALERT_EVENTS and app_settings.ALERTS_ENABLED:
        # After commit: a rolled-back event never alerts, and the mail never waits inside a transaction.
        transaction.on_commit(partial(_dispatch, event), robust=True)


@receiver(request_started, dispatch_uid="twig_auth.alerts.request_started")
def _request_started(sender: Any, **kwargs: Any) -> None:
    _drain()  # whatever a request that never finished left behind
    _local.pending = []


@receiver(request_finished, dispatch_uid="twig_auth.alerts.request_finished")
def _request_finished(sender: Any, **kwargs: Any) -> None:
    # Runs after Django's own end-of-request connection cleanup: a connection these queries open is closed (or
    # kept, per CONN_MAX_AGE) by the next request's cleanup on this thread.
    _drain()


def _drain() -> bool:
    pending = getattr(_local, "pending", None)
    _local.pending = None
    for event in pending or ():
        services.raise_alerts(event)  # never raises
    return bool(pending)
