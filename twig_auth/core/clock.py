"""The one clock seam. Code asks :func:`now`; tests move time with :func:`frozen`, never ``sleep``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.utils import timezone
from django.utils.module_loading import import_string

_now: Callable[[], dt.datetime] | None = None


def system_now() -> dt.datetime:
    """Return the wall-clock time, timezone aware (UTC)."""
    return timezone.now()


def now() -> dt.datetime:
    """Return the current time from the configured clock (``TWIG_AUTH["CLOCK"]``)."""
    global _now
    if _now is None:
        from twig_auth.conf import app_settings

        _now = import_string(app_settings.CLOCK)
    return _now()


def reset() -> None:
    """Forget the loaded clock (called when settings change)."""
    global _now
    _now = None


class FrozenClock:
    """A clock standing still until :meth:`advance` moves it."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> dt.datetime:
        self.current += dt.timedelta(**delta)
        return self.current


@contextmanager
def frozen(start: dt.datetime | None = None) -> Iterator[FrozenClock]:
    """Freeze :func:`now` at ``start`` (default: the present) for the duration of the block."""
    global _now
    previous = _now
    fake = FrozenClock(start or system_now())
    _now = fake
    try:
        yield fake
    finally:
        _now = previous
