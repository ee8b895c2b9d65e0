"""B2 with rate limiting, requests per second through a real server: API key + scope + bucket vs the peers.

``bench/bench_http.py``'s machinery (one gunicorn sync worker on 127.0.0.1, ``wrk -t1 -c1`` or the Python
fallback, rotating order) on the Redis cache (``REDIS_URL``; without it this module reports one row and
measures nothing: a rate limit is about Redis here). Variants, GET of the same constant view:

* A: ``/ours-throttled``, ``ApiKeyAuthentication`` + ``HasScope`` + ``IsOrgMember`` + twig_auth's
  ``ScopeRateThrottle`` (a bucket per key and scope class, ``X-RateLimit-*`` on the answer);
* C: ``/hasapikey-throttled``, djangorestframework-api-key's ``HasAPIKey`` + DRF's ``ScopedRateThrottle``
  (scope ``read``), on the same Redis cache;
* B: ``/none``, no authentication (the ceiling);
* A0: ``/ours``, A without the throttle: what the throttle itself adds (reported, not judged);
* B1: ``/none-redis-get``, B plus one raw Redis ``GET``: the ceiling of anything that keeps its limits in
  Redis, since a round trip to a Redis on the same 2-core machine under load costs far more than the
  ~0.1 ms it costs idle (reported);
* A-local and B-local: A and B on a second server with the local-memory cache (per-process buckets, the
  embedded default): what authentication, scope check and throttle cost in CPU without any round trip.

Targets: A/C ≥ 1.5×, A/B ≥ 0.7×. ``bench/settings_http.py`` sets the read rates to 1,000,000 per minute
(ours) and per second (DRF, whose list of timestamps grows with the window), so no request is refused;
every warm-up answer of A must carry ``X-RateLimit-Remaining`` below the limit (the throttle ran and took
a token), and a 429 or any other non-200 during the measurement fails the rows.
"""

from __future__ import annotations

import http.client
import os

from bench.bench_apikeys import our_key, peer_key
from bench.bench_http import WRK, Variant, _note, _pair, gunicorn, measure
from bench.harness import Row

WARM_UP = 20
LIMIT = 1_000_000  # bench/settings_http.py: TWIG_AUTH["RATE_LIMITS"]["read"]


def get_with_headers(port: int, variant: Variant) -> tuple[int, dict[str, str]]:
    """One GET; return the status and the response headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", f"/{variant.path}",
                     headers={"Authorization": variant.authorization} if variant.authorization else {})
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        conn.close()


def warm_up(port: int, variant: Variant, *, throttled: bool) -> int:
    """Send the warm-up requests (the first API-key request pays bcrypt); return the last Remaining seen."""
    remaining = -1
    for _ in range(WARM_UP):
        status, headers = get_with_headers(port, variant)
        assert status == 200, f"{variant.name} answered {status}"
        if throttled:
            assert "X-RateLimit-Remaining" in headers, f"{variant.name}: no X-RateLimit-Remaining (no throttle ran)"
            remaining = int(headers["X-RateLimit-Remaining"])
    return remaining


def run(*, quick: bool) -> list[Row]:
    if not os.environ.get("REDIS_URL"):
        return [Row("B2 HTTP rps with rate limiting", "—", "—", "—", "needs REDIS_URL", None, "skipped: no Redis")]
    repeats, seconds = (5, 1.0) if quick else (5, 3.0)
    key, peer = our_key(["read"]), peer_key()
    ours = Variant("A (ours + ScopeRateThrottle)", "redis", "ours-throttled", f"Bearer {key}")
    hasapikey = Variant("C (HasAPIKey + ScopedRateThrottle)", "redis", "hasapikey-throttled", f"Api-Key {peer}")
    base = Variant("B (no auth)", "redis", "none", None)
    unthrottled = Variant("A0 (ours, no throttle)", "redis", "ours", f"Bearer {key}")
    one_get = Variant("B1 (no auth + one Redis GET)", "redis", "none-redis-get", None)
    ours_local = Variant("A-local (ours + ScopeRateThrottle, LocMemCache)", "locmem", "ours-throttled",
                         f"Bearer {key}")
    base_local = Variant("B-local (no auth, LocMemCache)", "locmem", "none", None)
    tool = "wrk -t1 -c1" if WRK else "Python http.client loop, 1 connection (wrk not installed)"
    with gunicorn("redis") as port, gunicorn("locmem") as local_port:
        ports = {"redis": port, "locmem": local_port}
        warm_up(port, ours, throttled=True)
        warm_up(local_port, ours_local, throttled=True)
        for variant in (hasapikey, base, unthrottled, one_get):
            warm_up(port, variant, throttled=False)
        warm_up(local_port, base_local, throttled=False)
        results = measure([ours, hasapikey, base, unthrottled, one_get, ours_local, base_local], ports, repeats,
                          seconds)
        after = warm_up(port, ours, throttled=True)  # still admitted, still drawing from the bucket
    a, c, b, a0 = (results[v.name] for v in (ours, hasapikey, base, unthrottled))
    b1, a_local, b_local = (results[v.name] for v in (one_get, ours_local, base_local))
    ok = a.errors == 0 and b.errors == 0 and c.errors == 0 and 0 <= after < LIMIT
    detail = "; ".join([f"{repeats} × {seconds:g} s per variant, {tool}, gunicorn -w 1 sync, Redis cache",
                        _note("ours", a), _note("HasAPIKey + ScopedRateThrottle", c), _note("no auth", b),
                        f"X-RateLimit-Remaining {after:,} of {LIMIT:,} after the measurement"])
    vs_peer, vs_base, vs_unthrottled = _pair(a, c), _pair(a, b), _pair(a, a0)
    return [
        Row("B2 HTTP rps: API key + `HasScope` + `ScopeRateThrottle` vs `HasAPIKey` + `ScopedRateThrottle` (Redis)",
            f"{vs_peer.ours:,.0f} rps", f"{vs_peer.peer:,.0f} rps", f"{vs_peer.ours / vs_peer.peer:.2f}×", "≥ 1.5×",
            ok and vs_peer.ours / vs_peer.peer >= 1.5, detail),
        Row("B2 HTTP rps: API key + `HasScope` + `ScopeRateThrottle` (Redis) vs no auth",
            f"{vs_base.ours:,.0f} rps", f"{vs_base.peer:,.0f} rps", f"{vs_base.ours / vs_base.peer:.2f}×", "≥ 0.7×",
            ok and vs_base.ours / vs_base.peer >= 0.7, detail),
        Row("B2 HTTP rps: API key + `HasScope` + `ScopeRateThrottle` (Redis) vs no auth + one raw Redis `GET`",
            f"{_pair(a, b1).ours:,.0f} rps", f"{_pair(a, b1).peer:,.0f} rps",
            f"{_pair(a, b1).ours / _pair(a, b1).peer:.2f}×", "reported", None,
            _note("no auth + one Redis GET", b1)),
        Row("B2 HTTP rps: API key + `HasScope` + `ScopeRateThrottle` vs no auth, both on LocMemCache "
            "(per-process buckets: the CPU cost without a round trip)",
            f"{_pair(a_local, b_local).ours:,.0f} rps", f"{_pair(a_local, b_local).peer:,.0f} rps",
            f"{_pair(a_local, b_local).ours / _pair(a_local, b_local).peer:.2f}×", "≥ 0.7×",
            a_local.errors == 0 and _pair(a_local, b_local).ours / _pair(a_local, b_local).peer >= 0.7,
            "; ".join([_note("ours, LocMemCache", a_local), _note("no auth, LocMemCache", b_local)])),
        Row("B2 HTTP rps: what the throttle adds, `/ours` with `ScopeRateThrottle` vs without (Redis)",
            f"{vs_unthrottled.ours:,.0f} rps", f"{vs_unthrottled.peer:,.0f} rps",
            f"{vs_unthrottled.ours / vs_unthrottled.peer:.2f}×", "reported", None, _note("ours without throttle", a0)),
    ]
