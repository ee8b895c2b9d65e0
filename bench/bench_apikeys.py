"""B1, B1-cold and B11, API key verification in process: warm, Redis, checksum, cold, wrong-secret flood.

Rows (targets from ``research/performance.md`` §7):

* warm verify, embedded LocMemCache: ``authenticate_key(full_key)`` vs djangorestframework-api-key's
  ``HasAPIKey().has_permission(request, view)`` over a table of 1,000 keys: ≥ 50× faster;
* the same through our DRF layer (``ApiKeyAuthentication.authenticate`` + ``HasScope``) vs ``HasAPIKey``;
* warm verify with the Redis cache (only when ``REDIS_URL`` is set): 1 round trip, ratio reported;
* a key with a bad checksum is refused with 0 SQL and 0 cache calls (≤ 2 µs);
* cold verify (cache miss: 1 indexed query + one bcrypt-12 hash) vs a raw ``bcrypt.checkpw``: ≤ 1.1×;
* SQL queries and cache calls per verification, warm and cold (B11);
* 100 distinct wrong secrets against one key id run at most ``API_KEY_HASHES_PER_MINUTE`` hashes per minute.

The in-process rows point ``TWIG_AUTH["REDIS_CACHE_ALIAS"]`` at the ``bench-locmem`` alias
(``bench/settings.py``), so they measure the embedded default whatever ``REDIS_URL`` says. Cache calls are
counted by wrapping the cache object the verifier uses; SQL with ``CaptureQueriesContext``; hashes by
wrapping ``bcrypt.checkpw`` (ours) and the peer's ``KeyGenerator.verify``.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import bcrypt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.request import Request
from rest_framework.views import APIView

from bench.harness import Pair, Row, alternate, fmt_time, per_call, samples_note
from twig_auth.apikeys import format as key_format
from twig_auth.apikeys import verification
from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.services import issue_api_key
from twig_auth.conf import app_settings
from twig_auth.contrib.rest_framework.authentication import ApiKeyAuthentication
from twig_auth.contrib.rest_framework.permissions import HasScope
from twig_auth.exceptions import InvalidApiKey
from twig_auth.orgs.models import Membership
from twig_auth.orgs.services import create_organization

TABLE_SIZE = 1_000  # keys in each table (ours and the peer's): a realistic index to look up
FLOOD = 100
LOCMEM = "bench-locmem"
CACHE_OPS = frozenset({"get", "set", "add", "incr", "delete", "get_many", "set_many", "delete_many"})


# --- fixtures, shared with bench_http -----------------------------------------------------------------

_fixtures: dict[str, Any] = {}


def creator() -> Membership:
    """Return a super admin of a fresh org (made once per process), with 1,000 other keys in ``api_keys``."""
    if "creator" not in _fixtures:
        tag = secrets.token_hex(4)
        user = get_user_model()._default_manager.create(email=f"bench-keys-{tag}@example.test", password="!")
        org = create_organization(slug=f"bench-keys-{tag}", name="Bench keys", owner=user)
        membership = Membership.objects.select_related("org").get(org=org, user=user)
        filler = "bcrypt$" + bcrypt.hashpw(b"filler", bcrypt.gensalt(4)).decode()
        now = membership.role_changed_at
        ApiKey.objects.bulk_create([
            ApiKey(id=f"key_bench{tag}{i:06d}", org=org, created_by=membership, name=f"filler {i}", scopes=["read"],
                   environment="live", key_id=key_format.generate("live").key_id, hashed_secret=filler,
                   created_at=now)
            for i in range(TABLE_SIZE)
        ], batch_size=500)
        _fixtures["creator"] = membership
    return _fixtures["creator"]


def our_key(scopes: list[str] | None = None) -> str:
    """Issue a live key (bcrypt cost 12, the default hasher) and return its plaintext."""
    _, plaintext = issue_api_key(creator=creator(), name=f"bench {secrets.token_hex(3)}",
                                 scopes=scopes or ["read"], environment="live")
    return plaintext


def peer_key() -> str:
    """Return a key of djangorestframework-api-key; its table holds 1,000 keys (made once per process)."""
    from rest_framework_api_key.models import APIKey

    if "peer" not in _fixtures:
        generator = APIKey.objects.key_generator
        rows = []
        for i in range(TABLE_SIZE):
            _, prefix, hashed = generator.generate()
            rows.append(APIKey(id=f"{prefix}.{hashed}", prefix=prefix, hashed_key=hashed, name=f"filler {i}"))
        APIKey.objects.bulk_create(rows, batch_size=500)
        _, _fixtures["peer"] = APIKey.objects.create_key(name="bench")
    return _fixtures["peer"]


def locmem_settings() -> override_settings:
    return override_settings(TWIG_AUTH={**settings.TWIG_AUTH, "REDIS_CACHE_ALIAS": LOCMEM})


def redis_alias() -> str | None:
    """Return the alias of a django-redis cache, if the run has one (``REDIS_URL``)."""
    for alias, conf in settings.CACHES.items():
        if conf["BACKEND"].startswith("django_redis."):
            return alias
    return None


class CountingCache:
    """A cache proxy counting the calls the verifier makes (each is one round trip on Redis)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in CACHE_OPS:
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


@contextmanager
def counting_io() -> Iterator[tuple[CountingCache, CaptureQueriesContext]]:
    """Count the verifier's cache calls and the SQL queries run inside the block."""
    counting = CountingCache(caches[app_settings.REDIS_CACHE_ALIAS])
    with mock.patch.object(verification, "_cache", lambda: counting), CaptureQueriesContext(connection) as q:
        yield counting, q


def io_note(counting: CountingCache, queries: CaptureQueriesContext) -> str:
    ops = ", ".join(f"{k}×{v}" for k, v in sorted(counting.calls.items())) or "none"
    return f"{len(queries.captured_queries)} SQL, {sum(counting.calls.values())} cache calls ({ops})"


def forget(full_key: str) -> None:
    """Drop the cached verification of ``full_key`` (so the next verify is cold)."""
    parsed = key_format.parse(full_key)
    verification.invalidate([parsed.key_id])
    caches[app_settings.REDIS_CACHE_ALIAS].delete(verification._entry(verification.digest_of(full_key)))


def has_api_key(full_key: str) -> Callable[[], bool]:
    """Return a call of the peer's ``HasAPIKey().has_permission`` with the key in ``Authorization``."""
    from rest_framework_api_key.permissions import HasAPIKey

    request = RequestFactory().get("/bench", HTTP_AUTHORIZATION=f"Api-Key {full_key}")
    permission, view = HasAPIKey(), APIView()
    return lambda: permission.has_permission(request, view)


def expect(fn: Callable[[], object], outcome: object) -> Callable[[], object]:
    """Check once, outside any timing, that ``fn`` does what the row claims."""
    got = fn()
    assert got == outcome, f"expected {outcome!r}, got {got!r}"
    return fn


def refused(full_key: str) -> Callable[[], str]:
    def call() -> str:
        try:
            verification.authenticate_key(full_key)
        except InvalidApiKey as exc:
            return type(exc).__name__
        return "accepted"

    return call


def ratio_row(name: str, pair: Pair, target: str, minimum: float, detail: str = "") -> Row:
    ratio = pair.peer / pair.ours
    return Row(name, fmt_time(pair.ours), fmt_time(pair.peer), f"{ratio:,.1f}× faster", target, ratio >= minimum,
               "; ".join(filter(None, [samples_note(pair, fmt_time), detail])))


# --- B1: warm verification ------------------------------------------------------------------------------


def warm_rows(quick: bool, full: str, peer: str) -> list[Row]:
    ours_calls, peer_calls = (2_000, 200) if quick else (20_000, 1_000)
    peer_fn = expect(has_api_key(peer), True)
    rows = []
    with locmem_settings():
        verification.authenticate_key(full)  # warm (one bcrypt hash)
        ours_fn = expect(lambda: verification.authenticate_key(full).key_id, key_format.parse(full).key_id)
        pair = alternate(lambda: per_call(ours_fn, ours_calls), lambda: per_call(peer_fn, peer_calls))
        with counting_io() as (counting, queries):
            ours_fn()
        warm_io = io_note(counting, queries)
        rows.append(ratio_row("warm verify, LocMemCache: `authenticate_key` vs `HasAPIKey.has_permission` "
                              f"({TABLE_SIZE:,} keys each)", pair, "≥ 50× faster", 50,
                              f"ours per verify: {warm_io}"))

        factory = RequestFactory()
        request = Request(factory.get("/bench", HTTP_AUTHORIZATION=f"Bearer {full}"))
        view = APIView()
        view.required_scopes = {"GET": "read"}  # type: ignore[attr-defined]
        auth, scope = ApiKeyAuthentication(), HasScope()

        def drf_layer() -> bool:
            _user, principal = auth.authenticate(request)  # type: ignore[misc]
            request._auth = principal
            return scope.has_permission(request, view)

        expect(drf_layer, True)
        pair = alternate(lambda: per_call(drf_layer, ours_calls), lambda: per_call(peer_fn, peer_calls))
        rows.append(ratio_row("warm, DRF layer: `ApiKeyAuthentication` + `HasScope` vs `HasAPIKey`", pair,
                              "≥ 50× faster", 50))

        with CaptureQueriesContext(connection) as peer_queries:
            peer_fn()
        rows.append(Row("B11: queries per warm verify", warm_io, f"{len(peer_queries.captured_queries)} SQL",
                        "—", "0 SQL, ≤ 1 cache round trip",
                        not queries.captured_queries and sum(counting.calls.values()) <= 1))

    alias = redis_alias()
    if alias is None:
        rows.append(Row("warm verify, Redis cache (1 round trip) vs `HasAPIKey`", "skipped: no REDIS_URL", "—",
                        "—", "1 round trip; ratio reported", None))
        return rows
    with override_settings(TWIG_AUTH={**settings.TWIG_AUTH, "REDIS_CACHE_ALIAS": alias}):
        verification.authenticate_key(full)
        redis_calls = 500 if quick else 3_000
        pair = alternate(lambda: per_call(ours_fn, redis_calls), lambda: per_call(peer_fn, peer_calls))
        with counting_io() as (counting, queries):
            ours_fn()
        ratio = pair.peer / pair.ours
        calls = sum(counting.calls.values())
        rows.append(Row("warm verify, Redis cache vs `HasAPIKey`", fmt_time(pair.ours), fmt_time(pair.peer),
                        f"{ratio:,.1f}× faster", "1 round trip, 0 SQL (ratio reported)",
                        calls == 1 and not queries.captured_queries,
                        f"{samples_note(pair, fmt_time)}; ours per verify: {io_note(counting, queries)}"))
    return rows


# --- B1-cold: bad checksum, cache miss, wrong-secret flood -------------------------------------------------


def checksum_row(quick: bool, full: str) -> Row:
    bad = full[:-1] + ("A" if full[-1] != "A" else "B")  # same key, one checksum character off
    from rest_framework_api_key.models import APIKey

    peer_bad = f"{APIKey.objects.key_generator.get_prefix()}.{secrets.token_urlsafe(24)}"  # unknown prefix
    calls = 5_000 if quick else 50_000
    with locmem_settings():
        ours_fn = expect(refused(bad), "InvalidApiKey")
        peer_fn = expect(has_api_key(peer_bad), False)
        pair = alternate(lambda: per_call(ours_fn, calls), lambda: per_call(peer_fn, max(calls // 100, 100)))
        with counting_io() as (counting, queries):
            ours_fn()
    io = sum(counting.calls.values()) + len(queries.captured_queries)
    ratio = pair.peer / pair.ours
    return Row("bad checksum refused vs `HasAPIKey` with an unknown key", fmt_time(pair.ours), fmt_time(pair.peer),
               f"{ratio:,.0f}× faster", "≤ 2 µs, 0 I/O", pair.ours <= 2e-6 and io == 0,
               f"{samples_note(pair, fmt_time)}; ours: {io_note(counting, queries)}")


def cold_rows(quick: bool, full: str) -> list[Row]:
    parsed = key_format.parse(full)
    raw_hash = ApiKey.objects.get(key_id=parsed.key_id).hashed_secret.split("$", 1)[1].encode()
    assert bcrypt.checkpw(parsed.secret.encode(), raw_hash)
    # Every hash check (a right secret too) spends the key id's budget; lift it for this row only.
    lifted = {**settings.TWIG_AUTH, "REDIS_CACHE_ALIAS": LOCMEM, "API_KEY_HASHES_PER_MINUTE": 1000}

    def ours() -> float:
        forget(full)
        seconds = per_call(lambda: verification.authenticate_key(full), 1)
        return seconds

    def peer() -> float:
        return per_call(lambda: bcrypt.checkpw(parsed.secret.encode(), raw_hash), 1)

    with override_settings(TWIG_AUTH=lifted):
        pair = alternate(ours, peer, repeats=5 if quick else 7)
        forget(full)
        with counting_io() as (counting, queries):
            verification.authenticate_key(full)
    ratio = pair.ours / pair.peer
    cold_io = io_note(counting, queries)
    return [
        Row("cold verify (cache miss: DB + bcrypt-12) vs raw `bcrypt.checkpw`", fmt_time(pair.ours),
            fmt_time(pair.peer), f"{ratio:.3f}", "≤ 1.1 (one hash, one indexed query)", ratio <= 1.1,
            f"{samples_note(pair, fmt_time)}; ours per cold verify: {cold_io}"),
        Row("B11: queries per cold verify", cold_io, "—", "—", "1 SQL", len(queries.captured_queries) == 1),
    ]


@contextmanager
def counting_hashes() -> Iterator[Counter[str]]:
    """Count bcrypt verifications (ours) and the peer's key verifications."""
    from rest_framework_api_key.models import APIKey

    counts: Counter[str] = Counter()
    real_checkpw, generator = bcrypt.checkpw, APIKey.objects.key_generator
    real_verify = generator.verify

    def checkpw(password: bytes, hashed: bytes) -> bool:
        counts["ours"] += 1
        return real_checkpw(password, hashed)

    def verify(key: str, hashed_key: str) -> bool:
        counts["peer"] += 1
        return real_verify(key, hashed_key)

    bcrypt.checkpw = checkpw  # type: ignore[assignment]
    generator.verify = verify  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        bcrypt.checkpw = real_checkpw  # type: ignore[assignment]
        del generator.verify


def flood_row(quick: bool) -> Row:
    budget = app_settings.API_KEY_HASHES_PER_MINUTE
    windows: list[int] = []
    seconds: dict[str, list[float]] = {"ours": [], "peer": []}
    after: list[str] = []

    def ours() -> float:
        with locmem_settings():
            full = our_key()
            parsed = key_format.parse(full)
            wrong = [key_format.generate("live", key_id=parsed.key_id).full for _ in range(FLOOD)]
            start_window = int(time.time() // 60)
            t0 = time.perf_counter()
            with counting_hashes() as counts:
                outcomes = Counter(refused(w)() for w in wrong)
            seconds["ours"].append(time.perf_counter() - t0)
            windows.append(int(time.time() // 60) - start_window + 1)
            assert outcomes == Counter({"InvalidApiKey": FLOOD}), outcomes
            after.append(refused(full)())  # the right key, cold, while its id's budget is spent
        return float(counts["ours"])

    def peer() -> float:
        from rest_framework_api_key.models import APIKey

        _, full = APIKey.objects.create_key(name="flood")
        prefix = full.partition(".")[0]
        wrong = [f"{prefix}.{secrets.token_urlsafe(24)}" for _ in range(FLOOD)]
        t0 = time.perf_counter()
        with counting_hashes() as counts:
            assert not any(has_api_key(w)() for w in wrong)
        seconds["peer"].append(time.perf_counter() - t0)
        return float(counts["peer"])

    pair = alternate(ours, peer)
    worst = max(pair.ours_samples)
    allowed = budget * max(windows)
    return Row(f"wrong-secret flood: {FLOOD} distinct wrong secrets, one key id", f"{worst:.0f} hashes (worst of "
               f"{len(pair.ours_samples)})", f"{pair.peer:.0f} hashes (SHA-512, no throttle)", "—",
               f"≤ API_KEY_HASHES_PER_MINUTE ({budget}) per minute window", worst <= allowed,
               f"ours hashes {[int(v) for v in pair.ours_samples]}, minute windows spanned {windows}, "
               f"flood time {[fmt_time(s) for s in seconds['ours']]}; peer flood time "
               f"{[fmt_time(s) for s in seconds['peer']]}; right key verified cold right after the flood: "
               f"{Counter(after)}")


def run(*, quick: bool) -> list[Row]:
    full = our_key()
    peer = peer_key()
    rows = warm_rows(quick, full, peer)
    rows.append(checksum_row(quick, full))
    rows.extend(cold_rows(quick, full))
    rows.append(flood_row(quick))
    return rows

