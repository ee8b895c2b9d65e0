"""B4, B5 and B12, rate limiting on Redis: over-admission, rolling-window bound, round trips, µs, memory.

Three limiters, in the same run, on the same django-redis cache (``REDIS_URL``; without it the module
reports one row and measures nothing: the point is one limit shared by many processes):

* ours: :func:`twig_auth.ratelimit.bucket.take` (and ``take_all``), the token bucket in one Lua script;
* DRF's ``ScopedRateThrottle`` (a sliding log in a pickled list: GET, then SET);
* django-ratelimit's ``is_ratelimited(..., increment=True)`` (a fixed window: ``add``, then ``incr``).

Rows (targets from ``research/performance.md`` §7):

* **B4 over-admission**: 8 processes, released together by a barrier, each make M checks on one key
  (3× the limit offered in all), for each scope class's rate (execute 100, write 10, read 200, admin
  50 per minute). "Allowed" is what an exact limiter of that kind may admit in the time the burst took:
  ours the capacity plus the refill during the burst, DRF the limit, django-ratelimit the limit per
  fixed window the burst touched. Target: +0 for ours in every repeat.
* **B4 rolling window**: the same 8 processes hammer one key for a while, with time scaled down 60×
  (100 per second instead of per minute: the algorithms are scale-free, and DRF accepts only
  one-unit periods); the most admissions in any rolling window of one period. Target for ours
  ≤ capacity + rate × window (= 2 × limit); a fixed window reaches 2 × limit too, a sliding log only
  exceeds the limit by its races.
* **B5 round trips per check**, counted in this process by wrapping redis-py's
  ``Connection.send_packed_command`` (a pipeline or a script is one send, so one round trip), on the
  admitted and the refused path, for ``take_all`` with two buckets, and for one whole API-key request
  through ``ScopeRateThrottle`` (key check + bucket), next to ``HasAPIKey`` + ``ScopedRateThrottle``.
* **B5 µs per check** (median of individually timed checks, read scope 200/min, a fresh key every 200
  checks so every check is admitted and DRF's list stays realistic), against each peer and a raw ``GET``.
* **B12 memory per bucket**: ``MEMORY USAGE`` of ours vs DRF's list after 200 requests (read scope).

Keys are random per run; ours and DRF's are deleted at the end, django-ratelimit's expire on their own
(period + 5 s).
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from bench.harness import MIN_REPEATS, Row, fmt_time, timer_name
from twig_auth.ratelimit.rates import DEFAULT_RATE_LIMITS, Rate

# Only light imports at module level: the spawned race workers import this module before django.setup().

PROCESSES = 8
LIMITERS = ("ours", "drf", "django-ratelimit")
# The contract's rate of each scope class (execute 100, write 10, read 200, admin 50 per minute).
SCOPE_RATES = tuple((scope, Rate.parse(text)) for scope, text in DEFAULT_RATE_LIMITS.items())
HIGH = 1_000_000  # a limit that never refuses: the µs and HTTP rows measure admitted checks
WINDOW_LIMIT = 100  # the rolling-window row: 100 per 1 s, the execute rate with time scaled 60×


# --- the three limiters, built the same way in the parent and in the race workers ----------------------


def checker(limiter: str, key: str, limit: int, period: int) -> Callable[[], bool]:
    """Return a function making one admission check on ``key`` (True: admitted) with the given limiter."""
    if limiter == "ours":
        from twig_auth.ratelimit.bucket import bucket_key, take

        rate, bkey = Rate(limit, period), bucket_key(key, "bench")
        return lambda: take(bkey, rate).allowed
    if limiter == "drf":
        throttle_cls, request, view = drf_throttle(key, limit, period)
        return lambda: throttle_cls().allow_request(request, view)  # DRF makes one throttle per request
    if limiter == "django-ratelimit":
        from django.http import HttpRequest
        from django_ratelimit.core import is_ratelimited

        request, rate = HttpRequest(), f"{limit}/{period}s"
        return lambda: not is_ratelimited(request, group="bench", key=lambda _g, _r: key, rate=rate,
                                          increment=True)
    raise ValueError(limiter)


def drf_throttle(key: str, limit: int, period: int) -> tuple[type, Any, Any]:
    """A ``ScopedRateThrottle`` with its own rate table, and a request and view it identifies as ``key``."""
    from types import SimpleNamespace

    from rest_framework.throttling import ScopedRateThrottle

    unit = {1: "s", 60: "m", 3600: "h", 86400: "d"}[period]  # DRF parses only one-unit periods

    class Throttle(ScopedRateThrottle):
        THROTTLE_RATES = {"bench": f"{limit}/{unit}"}

    # get_cache_key reads request.user.pk: the throttle key is throttle_bench_<key>, as for a user's requests.
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=key))
    return Throttle, request, SimpleNamespace(throttle_scope="bench")


# --- counting what is sent to Redis ------------------------------------------------------------------


@dataclass
class Sent:
    """Round trips (sends) and commands this process sent to Redis inside :func:`counting_redis`."""

    trips: int = 0
    commands: Counter[str] = field(default_factory=Counter)


@contextmanager
def counting_redis() -> Iterator[Sent]:
    """Count every send of every redis-py connection in this process (django-redis's and ours alike).

    ``send_packed_command`` is called once per command, and once per pipeline with all its commands: one
    call, one round trip. A Lua script is one ``EVALSHA``; what it runs inside Redis costs no round trip.
    """
    from redis.connection import AbstractConnection

    sent = Sent()
    send_packed, send_command, pack_commands = (AbstractConnection.send_packed_command,
                                                AbstractConnection.send_command, AbstractConnection.pack_commands)

    def counted_send(self: Any, command: Any, check_health: bool = True) -> Any:
        sent.trips += 1
        return send_packed(self, command, check_health)

    def counted_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent.commands[str(args[0]).upper()] += 1
        return send_command(self, *args, **kwargs)

    def counted_pipeline(self: Any, commands: Any) -> Any:
        for args in commands:
            sent.commands[str(args[0]).upper()] += 1
        return pack_commands(self, commands)

    with mock.patch.object(AbstractConnection, "send_packed_command", counted_send), \
            mock.patch.object(AbstractConnection, "send_command", counted_command), \
            mock.patch.object(AbstractConnection, "pack_commands", counted_pipeline):
        yield sent


# --- the race workers (spawned processes) -------------------------------------------------------------


def race_worker(tasks: Any, results: Any, barrier: Any) -> None:
    """Set up Django, then run tasks: warm up, wait at the barrier with the others, check, report.

    A task is ``(limiter, key, limit, period, count, seconds)``: ``count`` checks, or as many as fit in
    ``seconds`` when ``count`` is 0. The report is ``(start, end, admissions, round trips, checks)``, an
    admission being the times just before and just after the admitted check.
    """
    import django

    django.setup()
    while (task := tasks.get()) is not None:
        limiter, key, limit, period, count, seconds = task
        checker(limiter, f"{key}:warm", limit, period)()  # connection, script load: outside the count
        check = checker(limiter, key, limit, period)
        admitted: list[tuple[float, float]] = []
        barrier.wait(60)
        with counting_redis() as sent:
            start = time.time()
            deadline = start + seconds
            done = 0
            while (done < count) if count else (time.time() < deadline):
                before = time.time()
                if check():
                    admitted.append((before, time.time()))
                done += 1
            end = time.time()
        results.put((start, end, admitted, sent.trips, done))


class Racers:
    """``PROCESSES`` spawned workers that check together; always stopped on exit."""

    def __init__(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no inherited Django connections or sockets
        self.barrier = ctx.Barrier(PROCESSES)
        self.results = ctx.Queue()
        self.queues = [ctx.Queue() for _ in range(PROCESSES)]
        self.procs = [ctx.Process(target=race_worker, args=(q, self.results, self.barrier), daemon=True)
                      for q in self.queues]

    def __enter__(self) -> Racers:
        for proc in self.procs:
            proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for q in self.queues:
            q.put(None)
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)

    def run(self, limiter: str, key: str, limit: int, period: int, count: int = 0,
            seconds: float = 0) -> Burst:
        """Give every worker the same task, release them together, and gather their reports."""
        for q in self.queues:
            q.put((limiter, key, limit, period, count, seconds))
        reports = [self.results.get(timeout=120 + seconds) for _ in self.procs]
        admitted = sorted(span for r in reports for span in r[2])
        return Burst(min(r[0] for r in reports), max(r[1] for r in reports), admitted,
                     sum(r[3] for r in reports), sum(r[4] for r in reports))


@dataclass(frozen=True)
class Burst:
    start: float
    end: float
    admitted: list[tuple[float, float]]  # (before, after) each admitted check, sorted
    trips: int
    checks: int


def allowed(limiter: str, key: str, limit: int, period: int, burst: Burst) -> int:
    """What an exact limiter of this kind may admit during ``burst`` (see the module docstring)."""
    if limiter == "ours":
        return limit + int(limit * (burst.end - burst.start) / period)
    if limiter == "drf":
        return limit
    from django_ratelimit.core import _get_window

    with mock.patch("django_ratelimit.core.time.time", return_value=burst.start):
        first = _get_window(key, period)
    with mock.patch("django_ratelimit.core.time.time", return_value=burst.end):
        last = _get_window(key, period)
    return limit * (1 + (last - first) // period)


def rolling_max(admitted: list[tuple[float, float]], window: float) -> int:
    """The most admissions that certainly fell within one half-open interval of ``window`` seconds.

    An admission happened somewhere between its ``before`` and ``after`` times (the limiter's own clock is
    inside that span), so only checks whose whole span lies inside the interval are counted: scheduling
    delays on a busy machine can then not push the count above the truth. Intervals start at a ``before``.
    """
    best = 0
    for i, (start, _after) in enumerate(admitted):  # sorted by ``before``
        inside = 0
        for before, after in admitted[i:]:
            if before >= start + window:
                break
            inside += after < start + window
        best = max(best, inside)
    return best


def _order(i: int) -> tuple[str, ...]:
    k = i % len(LIMITERS)
    return LIMITERS[k:] + LIMITERS[:k]


def over_admission_rows(racers: Racers, repeats: int) -> list[Row]:
    rows = []
    for scope, rate in SCOPE_RATES:
        limit, period = rate.limit, rate.period
        per_process = max(10, -(-3 * limit // PROCESSES))
        over: dict[str, list[int]] = {name: [] for name in LIMITERS}
        admitted: dict[str, list[int]] = {name: [] for name in LIMITERS}
        off_redis = 0
        for i in range(repeats):
            for limiter in _order(i):
                key = f"bench-race-{secrets.token_hex(6)}"
                _cleanup(limiter, key)
                burst = racers.run(limiter, key, limit, period, count=per_process)
                over[limiter].append(len(burst.admitted) - allowed(limiter, key, limit, period, burst))
                admitted[limiter].append(len(burst.admitted))
                if limiter == "ours":  # one round trip per check, else some fell back to the per-process bucket
                    off_redis += burst.trips != burst.checks
        worst = {name: max(0, *values) for name, values in over.items()}
        most = {name: max(values) for name, values in admitted.items()}
        detail = "; ".join(f"{name} admitted {admitted[name]} (over {over[name]})" for name in LIMITERS)
        rows.append(Row(
            f"B4 over-admission, {PROCESSES} processes × {per_process} on one key, {scope} {limit}/"
            f"{'min' if period == 60 else f'{period} s'}: most admitted of capacity {limit} (over)",
            f"{most['ours']} (+{worst['ours']})",
            f"DRF {most['drf']} (+{worst['drf']}); django-ratelimit {most['django-ratelimit']} "
            f"(+{worst['django-ratelimit']})",
            f"DRF {most['drf'] / limit:.2f}× the capacity", f"ours +0 in each of {repeats} repeats",
            worst["ours"] == 0 and off_redis == 0,
            detail + (f"; {off_redis} bursts of ours not all on Redis" if off_redis else "")))
    return rows


def rolling_window_row(racers: Racers, repeats: int, seconds: float) -> Row:
    peaks: dict[str, list[int]] = {name: [] for name in LIMITERS}
    for i in range(repeats):
        for limiter in _order(i):
            key = f"bench-window-{secrets.token_hex(6)}"
            _cleanup(limiter, key)
            burst = racers.run(limiter, key, WINDOW_LIMIT, 1, seconds=seconds)
            peaks[limiter].append(rolling_max(burst.admitted, 1.0))
    bound = WINDOW_LIMIT + WINDOW_LIMIT  # capacity + rate × window
    worst = {name: max(values) for name, values in peaks.items()}
    return Row(f"B4 most admitted in any rolling window, {PROCESSES} processes × {seconds:g} s on one key, "
               f"limit {WINDOW_LIMIT} per 1 s (time scaled 60×)",
               f"{worst['ours']} (worst of {repeats})",
               f"DRF {worst['drf']}; django-ratelimit {worst['django-ratelimit']}",
               f"ours {worst['ours'] / WINDOW_LIMIT:.2f}× the limit", f"ours ≤ capacity + rate × window = {bound}",
               worst["ours"] <= bound, "; ".join(f"{name} {peaks[name]}" for name in LIMITERS))


# --- round trips, µs, memory (in this process) ------------------------------------------------------------


_created: list[tuple[str, str]] = []


def _cleanup(limiter: str, key: str) -> None:
    """Remember a key to delete at the end: a limiter's logical key, or ``("redis", full key)``."""
    _created.append((limiter, key))


def _delete_created() -> None:
    """Delete ours and DRF's keys (django-ratelimit's expire after period + 5 s; their names are hashed)."""
    from django.core.cache import cache

    from twig_auth.core.redis import get_redis
    from twig_auth.ratelimit.bucket import bucket_key

    client = get_redis()
    for limiter, key in _created:
        if limiter == "ours":
            client.delete(bucket_key(key, "bench"), bucket_key(f"{key}:warm", "bench"))
        elif limiter == "redis":
            client.delete(key)
        elif limiter == "drf":
            cache.delete_many([f"throttle_bench_{key}", f"throttle_bench_{key}:warm"])
    _created.clear()


def trips_per_call(fn: Callable[[], object], calls: int) -> tuple[float, Counter[str]]:
    """Round trips per call of ``fn`` (after one warm-up call), and the commands sent per call."""
    fn()
    with counting_redis() as sent:
        for _ in range(calls):
            fn()
    return sent.trips / calls, Counter({name: n / calls for name, n in sent.commands.items()})


def _fmt_commands(commands: Counter[str]) -> str:
    return " + ".join(name if n == 1 else f"{n:g}×{name}" for name, n in commands.items()) or "none"


def p50_per_check(make: Callable[[str], Callable[[], object]], calls: int, rotate: int) -> float:
    """The median time of one check over ``calls`` individually timed checks, a fresh key every ``rotate``."""
    clock = time.thread_time if timer_name() == "cpu" else time.perf_counter
    times: list[float] = []
    check = make(f"bench-us-{secrets.token_hex(6)}")
    check()  # warm
    for i in range(calls):
        if i % rotate == rotate - 1:
            check = make(f"bench-us-{secrets.token_hex(6)}")
        t0 = clock()
        check()
        times.append(clock() - t0)
    return statistics.median(times)


def _maker(limiter: str, limit: int, period: int) -> Callable[[str], Callable[[], object]]:
    def build(key: str) -> Callable[[], object]:
        _cleanup(limiter, key)
        return checker(limiter, key, limit, period)
    return build


def round_trip_rows(quick: bool) -> list[Row]:
    from twig_auth.ratelimit import bucket

    calls = 200 if quick else 1000
    trips, commands = {}, {}
    for name in LIMITERS:  # admitted path: a limit never reached
        trips[name], commands[name] = trips_per_call(_maker(name, HIGH, 60)(f"bench-rt-{secrets.token_hex(6)}"),
                                                     calls)
    refused, refused_cmds = {}, {}
    for name in LIMITERS:  # refused path: 1 per day, spent by the warm-up call
        check = _maker(name, 1, 86400)(f"bench-rt-{secrets.token_hex(6)}")
        refused[name], refused_cmds[name] = trips_per_call(check, calls)
        assert not check(), f"{name} admitted past a spent limit"
    two = [(bucket.bucket_key(f"bench-rt-{secrets.token_hex(6)}", s), Rate(HIGH, 60)) for s in ("read", "org")]
    _created.extend(("redis", key) for key, _rate in two)
    all_trips, all_cmds = trips_per_call(lambda: bucket.take_all(two), calls)

    def peers(values: dict[str, float]) -> str:
        return f"DRF {values['drf']:g}; django-ratelimit {values['django-ratelimit']:g}"

    detail = "; ".join(f"{name}: admitted {_fmt_commands(commands[name])}, refused {_fmt_commands(refused_cmds[name])}"
                       for name in LIMITERS)
    return [
        Row("B5 Redis round trips per admitted check: `take`", f"{trips['ours']:g}", peers(trips),
            f"{trips['ours'] / trips['django-ratelimit']:.2f}× django-ratelimit's", "1 (≤ 0.5× django-ratelimit)",
            trips["ours"] == 1 and trips["ours"] <= 0.5 * trips["django-ratelimit"], detail),
        Row("B5 Redis round trips per refused check (the 429 path): `take`", f"{refused['ours']:g}", peers(refused),
            "—", "1", refused["ours"] == 1),
        Row("B5 Redis round trips: `take_all` with 2 buckets", f"{all_trips:g}", "—", "—", "1",
            all_trips == 1, f"ours: {_fmt_commands(all_cmds)}"),
        *request_trip_rows(max(50, calls // 4)),
        *latency_rows(quick),
    ]


def latency_rows(quick: bool) -> list[Row]:
    """p50 per check of the three limiters and of a raw ``GET``, sampled in rotating order."""
    from twig_auth.core.redis import get_redis

    calls, rotate = (400, 200) if quick else (2000, 200)
    client = get_redis()
    raw_key = f"twig:bench-raw-{secrets.token_hex(6)}"
    _created.append(("redis", raw_key))
    client.set(raw_key, b"x" * 16, ex=120)
    makers = {name: _maker(name, 200, 60) for name in LIMITERS}
    makers["GET"] = lambda _key: lambda: client.get(raw_key)
    names = list(makers)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(MIN_REPEATS):
        for name in names[i % len(names):] + names[:i % len(names)]:
            samples[name].append(p50_per_check(makers[name], calls, rotate))
    p50 = {name: statistics.median(values) for name, values in samples.items()}
    detail = "; ".join(f"{name} [{', '.join(fmt_time(v) for v in values)}]" for name, values in samples.items())
    rows = [Row(f"B5 µs per admitted check (p50, read 200/min): `take` vs {label}", fmt_time(p50["ours"]),
                fmt_time(p50[peer]), f"{p50[peer] / p50['ours']:.2f}× faster", "reported", None, detail)
            for peer, label in (("drf", "DRF `ScopedRateThrottle`"), ("django-ratelimit", "django-ratelimit"))]
    rows.append(Row("B5 µs per admitted check (p50): `take` vs one raw Redis `GET`", fmt_time(p50["ours"]),
                    fmt_time(p50["GET"]), f"{p50['ours'] / p50['GET']:.2f}×", "≤ 1.2× a raw GET",
                    p50["ours"] <= 1.2 * p50["GET"], detail))
    return rows


def request_trip_rows(calls: int) -> list[Row]:
    """Round trips and SQL of one warm API-key request through ``ScopeRateThrottle``, and of the peer's."""
    from django.conf import settings
    from django.db import connection
    from django.test import RequestFactory, override_settings
    from django.test.utils import CaptureQueriesContext
    from rest_framework.throttling import ScopedRateThrottle

    from bench.bench_apikeys import our_key, peer_key
    from bench.urls import OursThrottled, PeerThrottled

    factory = RequestFactory()
    key, peer = our_key(["read"]), peer_key()

    def through(view: Callable[..., Any], authorization: str, headers: bool) -> Callable[[], None]:
        def call() -> None:
            response = view(factory.get("/x", HTTP_AUTHORIZATION=authorization))
            assert response.status_code == 200, response.status_code
            assert not headers or "X-RateLimit-Remaining" in response, "the throttle did not run"
        return call

    # Limits no measurement reaches, as bench/settings_http.py sets for the server. DRF binds its rate table
    # when rest_framework.throttling is imported, so it is patched rather than overridden.
    high = override_settings(TWIG_AUTH={**settings.TWIG_AUTH, "RATE_LIMITS": {"read": f"{HIGH}/m"}})
    results = {}
    with high, mock.patch.object(ScopedRateThrottle, "THROTTLE_RATES", {"read": f"{HIGH}/s"}):
        for name, view, auth, headers in (("ours", OursThrottled.as_view(), f"Bearer {key}", True),
                                          ("peer", PeerThrottled.as_view(), f"Api-Key {peer}", False)):
            call = through(view, auth, headers)
            call()  # the first API-key request pays the hash and fills the cache
            with CaptureQueriesContext(connection) as queries:
                trips, cmds = trips_per_call(call, calls)
            results[name] = (trips, cmds, len(queries) / (calls + 1))
    (ours, ours_cmds, ours_sql), (peer_trips, peer_cmds, peer_sql) = results["ours"], results["peer"]
    return [Row("B5 Redis round trips per warm API-key request through `ScopeRateThrottle` (key check + bucket)",
                f"{ours:g} RT, {ours_sql:g} SQL", f"{peer_trips:g} RT, {peer_sql:g} SQL",
                "peer: `HasAPIKey` + `ScopedRateThrottle`", "1 RT, 0 SQL", ours == 1 and ours_sql == 0,
                f"ours {_fmt_commands(ours_cmds)}; peer {_fmt_commands(peer_cmds)}")]


def memory_row() -> Row:
    """``MEMORY USAGE`` of one bucket of ours, DRF's list after 200 requests, django-ratelimit's counter."""
    from django.core.cache import cache
    from django_ratelimit import ALL
    from django_ratelimit.core import _get_window, _make_cache_key

    from twig_auth.core.redis import get_redis
    from twig_auth.ratelimit import bucket

    client = get_redis()
    principal = f"k:key_{secrets.token_hex(13)}"  # as long as a real key id
    ours_key = bucket.bucket_key(principal, "read")
    _created.extend([("redis", ours_key), ("drf", principal)])
    bucket.take(ours_key, Rate(200, 60))
    ours = client.memory_usage(ours_key)
    throttle_cls, request, view = drf_throttle(principal, 200, 60)
    for _ in range(200):
        throttle_cls().allow_request(request, view)
    drf = client.memory_usage(cache.make_key(f"throttle_bench_{principal}"))
    checker("django-ratelimit", principal, 200, 60)()
    rl_key = _make_cache_key("bench", _get_window(principal, 60), "200/60s", principal, ALL)
    rl = client.memory_usage(cache.make_key(rl_key))
    return Row("B12 Redis memory per bucket (`MEMORY USAGE`, read 200/min)", f"{ours} B",
               f"DRF {drf} B after 200 requests", f"{drf / ours:.1f}× smaller", "≤ 200 B", ours <= 200,
               f"ours: a hash of 2 fields + TTL, key {len(ours_key)} chars; django-ratelimit's counter {rl} B")


def run(*, quick: bool) -> list[Row]:
    from bench.bench_apikeys import redis_alias

    if not redis_alias() or not os.environ.get("REDIS_URL"):
        return [Row("B4/B5/B12 rate limits", "—", "—", "—", "needs REDIS_URL", None, "skipped: no Redis cache")]
    try:
        rows = [*round_trip_rows(quick), memory_row()]
        with Racers() as racers:
            race = over_admission_rows(racers, MIN_REPEATS)
            race.append(rolling_window_row(racers, MIN_REPEATS, 1.2 if quick else 2.2))
    finally:
        _delete_created()
    return race + rows
