"""Usage counting off the request path: an in-process buffer, flushed to the database in batches.

Each authenticated use adds one to ``(key, day, endpoint, status)`` in memory and remembers the last time
and IP per key. Every ``API_KEY_USAGE_FLUSH_SECONDS`` (checked on the next use, or by
``manage.py twig_apikeys flush`` and at process exit) the buffer is written in one transaction: counts
are added with ``F()`` expressions, so several processes flushing at once sum correctly.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import logging
import threading
import time
from collections import Counter
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from twig_auth.conf import app_settings
from twig_auth.core import clock

logger = logging.getLogger("twig_auth.apikeys")
MAX_ENDPOINT = 200


class UsageBuffer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, dt.date, str, int]] = Counter()
        self._last: dict[str, tuple[dt.datetime, str | None]] = {}
        self._seen_today: set[tuple[str, dt.date]] = set()
        self._flushed_at = time.monotonic()

    def add(self, key_pk: str, endpoint: str, status: int, ip: str | None) -> None:
        now = clock.now()
        with self._lock:
            self._counts[(key_pk, now.date(), endpoint[:MAX_ENDPOINT], status)] += 1
            self._last[key_pk] = (now, ip)
            due = time.monotonic() - self._flushed_at >= app_settings.API_KEY_USAGE_FLUSH_SECONDS
        if due:
            self.flush()

    def take(self) -> tuple[Counter[tuple[str, dt.date, str, int]], dict[str, tuple[dt.datetime, str | None]]]:
        with self._lock:
            counts, last = self._counts, self._last
            self._counts, self._last = Counter(), {}
            self._flushed_at = time.monotonic()
        return counts, last

    def flush(self) -> int:
        """Write the buffered counts; return how many rows were touched."""
        counts, last = self.take()
        if not counts and not last:
            return 0
        try:
            return self._write(counts, last)
        except Exception:  # noqa: BLE001  (usage must never break a request; the counts are re-queued)
            logger.exception("Could not write API key usage; will retry")
            with self._lock:
                self._counts.update(counts)
                for k, v in last.items():
                    self._last.setdefault(k, v)
            return 0

    def _write(self, counts: Counter[tuple[str, dt.date, str, int]],
               last: dict[str, tuple[dt.datetime, str | None]]) -> int:
        from twig_auth.apikeys.models import ApiKey, ApiKeyUsage
        from twig_auth.audit.events import Event
        from twig_auth.audit.services import record

        existing = set(ApiKey.objects.filter(pk__in={k[0] for k in counts} | set(last)).values_list("pk", flat=True))
        with transaction.atomic():
            for (key_pk, day, endpoint, status), n in counts.items():
                if key_pk not in existing:
                    continue
                filters = {"key_id": key_pk, "day": day, "endpoint": endpoint, "status": status}
                if not ApiKeyUsage.objects.filter(**filters).update(count=F("count") + n):
                    try:
                        with transaction.atomic():
                            ApiKeyUsage.objects.create(count=n, **filters)
                    except IntegrityError:  # another process created it meanwhile
                        ApiKeyUsage.objects.filter(**filters).update(count=F("count") + n)
            for key_pk, (when, ip) in last.items():
                ApiKey.objects.filter(pk=key_pk).update(last_used_at=when, last_used_ip=ip)
            for key in ApiKey.objects.filter(pk__in=set(last) & existing).select_related("org"):
                day = last[key.pk][0].date()
                if (key.pk, day) in self._seen_today:
                    continue
                self._seen_today.add((key.pk, day))
                record(Event.API_KEY_USED, org=key.org, target=key, details={
                    "prefix": key.prefix, "requests": sum(n for k, n in counts.items() if k[0] == key.pk)})
        return len(counts)


buffer = UsageBuffer()
atexit.register(lambda: _flush_quietly())


def _flush_quietly() -> None:
    counts, last = buffer.take()
    if counts or last:
        with contextlib.suppress(Exception):  # interpreter shutdown: the database may be gone
            buffer._write(counts, last)


def record_use(principal: Any, endpoint: str, status: int, ip: str | None) -> None:
    buffer.add(principal.id, endpoint, status, ip)
