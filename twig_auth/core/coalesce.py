"""Once per window: the first of many identical events passes, the others in the same window are coalesced
(an ``IP_BLOCKED`` per org, IP and credential; a ``RESOURCE_ACCESS`` per actor and resource)."""

from __future__ import annotations

import time

LOCAL_MAX = 10_000
# per-process coalescing when the shared cache fails: key -> monotonic time until which it is coalesced
_local_recent: dict[str, float] = {}
# keys that name their own window (a clock slot) and that this process has already decided
_decided: set[str] = set()


def first_in_window(key: str, seconds: int, *, what: str, slotted: bool = False) -> bool:
    """Whether ``key`` is new in its window of ``seconds``: a cache ``add`` (atomic across processes on Redis),
    or a per-process memory when the cache is down, so the caller coalesces per process rather than flood the
    audit table or fail the request. ``what`` names the use in the one warning an outage logs.

    ``slotted``: the key carries its window's slot, so once this process has asked about it the answer for the
    rest of the window is known to be "not new" (the cache entry lives at least until the slot ends); later
    asks then cost no round trip, which keeps a polling client's reads at the cost they had without auditing.
    """
    if slotted:
        if key in _decided:
            return False
        if len(_decided) >= LOCAL_MAX:
            _decided.clear()
        _decided.add(key)
    from django.core.cache import caches

    from twig_auth.conf import app_settings
    from twig_auth.core.cache import UNAVAILABLE, attempt

    added = attempt(what, caches[app_settings.REDIS_CACHE_ALIAS].add, key, 1, timeout=seconds)
    if added is not UNAVAILABLE:
        return bool(added)
    now = time.monotonic()
    if len(_local_recent) >= LOCAL_MAX:
        _local_recent.clear()
    if _local_recent.get(key, 0.0) > now:
        return False
    _local_recent[key] = now + seconds
    return True


def forget() -> None:
    """Drop this process's memories (tests)."""
    _local_recent.clear()
    _decided.clear()
