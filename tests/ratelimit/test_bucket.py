"""The token bucket: exact across processes, server-clocked, no starvation, expiring, with a safe fallback.

Tests marked ``redis`` run against ``REDIS_URL`` when it is set, else against the local Redis at
``redis://127.0.0.1:6379/13`` (``scripts/test`` starts one for both runs of the suite); they fail, never
skip, when no Redis answers. Every test uses its own random keys, so it shares the database safely.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import socket
import threading
import time
import uuid
from typing import Any

import pytest
import redis

from tests.ratelimit._workers import hammer
from twig_auth.conf import app_settings
from twig_auth.core import outage
from twig_auth.ratelimit import bucket as bucket_module
from twig_auth.ratelimit.bucket import BucketResult, LocalBucket, RedisBucket, bucket_key, take
from twig_auth.ratelimit.rates import DEFAULT_RATE_LIMITS, SCOPES, Rate, limits_for, validate_rate_limits

LOCAL_REDIS = "redis://127.0.0.1:6379/13"


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or LOCAL_REDIS


@pytest.fixture
def client() -> Any:
    url = redis_url()
    conn = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        conn.ping()
    except redis.RedisError as exc:
        pytest.fail(f"rate-limit tests need Redis at {url} ({exc}); scripts/test starts one.", pytrace=False)
    yield conn
    conn.close()


@pytest.fixture
def key(client: Any) -> Any:
    k = bucket_key(f"test-{uuid.uuid4().hex}", "read")
    yield k
    client.delete(k)


@pytest.fixture(autouse=True)
def _fresh_fallback() -> Any:
    bucket_module.reset_local()
    outage.reset()
    yield
    bucket_module.reset_local()
    outage.reset()


def server_ms(client: Any) -> float:
    sec, usec = client.time()
    return sec * 1000 + usec / 1000


# --- rates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "rate"), [("100/m", Rate(100, 60)), ("5/10s", Rate(5, 10)), ("1/d", Rate(1, 86400)),
                                            ("2/s", Rate(2, 1)), (" 50 / h ", Rate(50, 3600))])
def test_rate_grammar(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["lots", "10/y", "0/m", "10/0s", "-1/m", "10", "", None, 10])
def test_rate_grammar_refuses_bad_rates_and_zero_limits(text):
    # A zero limit or period is the divide-by-zero / infinite-TTL pitfall: refused at parse time.
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_contract_defaults():
    assert DEFAULT_RATE_LIMITS == {"execute": "100/m", "write": "10/m", "read": "200/m", "admin": "50/m"}
    assert [limits_for(None, s) for s in SCOPES] == [Rate(100, 60), Rate(10, 60), Rate(200, 60), Rate(50, 60)]
    assert app_settings.RATE_LIMITS == DEFAULT_RATE_LIMITS


def test_rate_limits_setting_overrides_some_scopes(settings, db):
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "RATE_LIMITS": {"read": "500/m"}}
    assert limits_for(1, "read") == Rate(500, 60)
    assert limits_for(1, "write") == Rate(10, 60)
    with pytest.raises(ValueError):
        limits_for(1, "delete")


def test_rate_limits_setting_is_validated(settings):
    assert validate_rate_limits(dict(DEFAULT_RATE_LIMITS)) is None
    assert "unknown scope" in validate_rate_limits({"delete": "1/m"})
    assert "read" in validate_rate_limits({"read": "0/m"})
    assert validate_rate_limits(["100/m"])
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "RATE_LIMITS": {"write": "fast"}}
    assert [name for name, _ in app_settings.errors()] == ["RATE_LIMITS"]


def test_headers_of_a_result():
    ok = BucketResult(True, 10, 9, 1_700_000_006, 0)
    assert ok.headers() == {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9",
                            "X-RateLimit-Reset": "1700000006"}
    assert BucketResult(False, 10, 0, 1_700_000_060, 6).headers()["Retry-After"] == "6"


# --- Redis: exactness across processes ------------------------------------------------------------


def race(client: Any, target: Any, args: tuple[Any, ...], processes: int = 8) -> tuple[list[int], float]:
    """Start ``processes`` children running ``target(*args, ready, start, out)``, release them together and
    return what each admitted and the seconds the race took on the Redis server's clock."""
    ctx = multiprocessing.get_context("fork")  # each child opens its own connection
    ready, out, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=target, args=(*args, ready, start, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=60)
        began = server_ms(client)
        start.set()
        admitted = [out.get(timeout=60) for _ in procs]
        elapsed_s = (server_ms(client) - began) / 1000
    finally:
        for p in procs:
            p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs)
    return admitted, elapsed_s


@pytest.mark.redis
@pytest.mark.parametrize("scope", SCOPES)
def test_eight_processes_admit_exactly_the_capacity(client, scope):
    rate = limits_for(None, scope)
    k = bucket_key(f"race-{uuid.uuid4().hex}", scope)
    per_process = max(1, rate.limit // 4)  # 8 processes send twice the capacity in total
    admitted, elapsed_s = race(client, hammer, (redis_url(), k, rate.limit, rate.period, per_process))
    # Refill while the race ran is rate.limit/period per second: well under one token for these rates
    # on a local Redis, so the count is exactly the capacity; the bound keeps a slow CI machine honest.
    refill = math.floor(elapsed_s * rate.limit / rate.period)
    assert rate.limit <= sum(admitted) <= rate.limit + refill, (admitted, elapsed_s)
    if refill == 0:
        assert sum(admitted) == rate.limit
    client.delete(k)


# --- Redis: values, refill, starvation, TTL, clocks ------------------------------------------------


@pytest.mark.redis
def test_remaining_and_reset_follow_the_server_clock(client, key):
    rb = RedisBucket(client)
    rate = Rate(5, 10)  # one token per 2 s
    before = server_ms(client)
    first = rb.take(key, rate)
    after = server_ms(client)
    assert (first.allowed, first.limit, first.remaining, first.retry_after) == (True, 5, 4, 0)
    assert math.ceil((before + 2000) / 1000) <= first.reset_at <= math.ceil((after + 2000) / 1000)
    results = [rb.take(key, rate) for _ in range(4)]
    assert [r.remaining for r in results] == [3, 2, 1, 0]
    empty_after = server_ms(client)
    assert results[-1].reset_at <= math.ceil((empty_after + 10_000) / 1000)
    assert results[-1].reset_at >= math.floor((before + 10_000) / 1000)
    refused = rb.take(key, rate)
    assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 0, 2)
    assert refused.headers()["Retry-After"] == "2"
    assert refused.reset_at == results[-1].reset_at  # a refusal does not move the full-again time


@pytest.mark.redis
def test_tokens_refill_at_the_rate(client, key):
    rb = RedisBucket(client)
    rate = Rate(2, 1)  # one token per 500 ms
    assert [rb.take(key, rate).allowed for _ in range(3)] == [True, True, False]
    time.sleep(0.55)
    again = rb.take(key, rate)
    assert again.allowed and again.remaining == 0
    assert not rb.take(key, rate).allowed


@pytest.mark.redis
def test_a_client_polling_faster_than_the_refill_is_not_starved(client, key):
    rb = RedisBucket(client)
    rate = Rate(4, 1)  # one token per 250 ms; the client polls every 20 ms
    assert all(rb.take(key, rate).allowed for _ in range(4))
    admitted, began = 0, time.monotonic()
    while time.monotonic() - began < 0.6:
        admitted += rb.take(key, rate).allowed
        time.sleep(0.02)
    assert 2 <= admitted <= 3  # the fractional tokens kept accruing through every refusal


@pytest.mark.redis
def test_a_refusal_writes_nothing(client, key):
    rb = RedisBucket(client)
    rate = Rate(1, 60)
    assert rb.take(key, rate).allowed
    state, ttl = client.hgetall(key), client.pttl(key)
    assert not rb.take(key, rate).allowed
    assert client.hgetall(key) == state
    assert client.pttl(key) <= ttl


@pytest.mark.redis
def test_the_key_lives_exactly_until_the_bucket_is_full(client, key):
    rb = RedisBucket(client)
    rate = Rate(10, 60)  # 6 s per token
    rb.take(key, rate)
    assert 5_900 <= client.pttl(key) <= 6_000  # one token to refill: not longer, and not shorter
    for _ in range(9):
        rb.take(key, rate)
    assert 59_000 <= client.pttl(key) <= 60_000


@pytest.mark.redis
def test_an_idle_bucket_expires_and_comes_back_full(client, key):
    rb = RedisBucket(client)
    rate = Rate(2, 1)
    assert rb.take(key, rate).remaining == 1
    assert 0 < client.pttl(key) <= 500
    time.sleep(0.6)
    assert not client.exists(key)
    assert rb.take(key, rate).remaining == 1  # full again: never more than the capacity after idling


@pytest.mark.redis
def test_skewed_application_clocks_change_nothing(client, key, monkeypatch):
    rb = RedisBucket(client)
    rate = Rate(3, 3600)
    assert all(rb.take(key, rate).allowed for _ in range(3))
    real_time, real_monotonic = time.time, time.monotonic
    for skew in (3600.0, 86400.0 * 365, -86400.0):  # app nodes an hour, a year, a day off
        monkeypatch.setattr(time, "time", lambda s=skew: real_time() + s)
        monkeypatch.setattr(time, "monotonic", lambda s=skew: real_monotonic() + s)
        refused = rb.take(key, rate)
        assert not refused.allowed
        assert abs(refused.reset_at - (server_ms(client) / 1000 + 3600)) < 5  # server time, not ours
    assert client.hget(key, "t") is not None


@pytest.mark.redis
def test_take_uses_the_configured_redis_cache(client, key, settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url()}}
    with caplog.at_level(logging.WARNING, logger="twig_auth.ratelimit.bucket"):
        assert take(key, Rate(3, 60)).remaining == 2
        assert take(key, Rate(3, 60)).remaining == 1
    assert client.exists(key)
    assert not caplog.records


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_redis_falls_back_to_the_process_bucket(settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
                                   "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1}}}
    k = bucket_key(f"down-{uuid.uuid4().hex}", "write")
    with caplog.at_level(logging.WARNING):
        results = [take(k, Rate(2, 60)) for _ in range(3)]
    assert [(r.allowed, r.remaining) for r in results] == [(True, 1), (True, 0), (False, 0)]
    assert results[-1].retry_after == 30
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "rate limiting (now per process" in warnings[0].getMessage()
    assert outage.outage_started() is not None  # the next requests skip Redis while it backs off


def test_without_redis_the_process_bucket_answers_silently(settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with caplog.at_level(logging.WARNING):
        assert take("k", Rate(1, 60)).allowed and not take("k", Rate(1, 60)).allowed
    assert not caplog.records


# --- the fallback maths, on an injected clock -------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.mono, self.wall = 1000.0, 1_700_000_000.0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def local(clock: Clock) -> LocalBucket:
    return LocalBucket(monotonic=lambda: clock.mono, wall=lambda: clock.wall)


def test_local_values_refill_and_retry(local, clock):
    rate = Rate(3, 3)  # one token per second
    first = local.take("k", rate)
    assert first == BucketResult(True, 3, 2, 1_700_000_001, 0)
    assert [local.take("k", rate).remaining for _ in range(2)] == [1, 0]
    refused = local.take("k", rate)
    assert refused == BucketResult(False, 3, 0, 1_700_000_003, 1)
    clock.advance(0.5)
    assert not local.take("k", rate).allowed
    clock.advance(0.5)
    assert local.take("k", rate) == BucketResult(True, 3, 0, 1_700_000_004, 0)


def test_local_polling_does_not_starve(local, clock):
    rate = Rate(1, 1)
    assert local.take("k", rate).allowed
    admitted = 0
    for _ in range(50):  # polls every 100 ms for 5 s: one token per second comes through
        clock.advance(0.1)
        admitted += local.take("k", rate).allowed
    assert admitted == 5


def test_local_idle_time_is_capped_at_capacity(local, clock):
    rate = Rate(5, 60)
    local.take("k", rate)
    clock.advance(86400)
    assert local.take("k", rate).remaining == 4


def test_local_wall_clock_jumps_do_not_refill(local, clock):
    rate = Rate(1, 60)
    assert local.take("k", rate).allowed
    clock.wall += 3600  # NTP step or a skewed node: refill follows the monotonic clock only
    assert not local.take("k", rate).allowed


def test_local_is_exact_across_threads(local):
    rate, results, lock = Rate(100, 3600), [], threading.Lock()
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        got = [local.take("shared", rate).allowed for _ in range(50)]
        with lock:
            results.extend(got)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 100


def test_local_forgets_buckets_that_are_full_again(local, clock, monkeypatch):
    monkeypatch.setattr(LocalBucket, "MAX_ENTRIES", 3)
    rate = Rate(2, 1)
    for name in "abc":
        local.take(name, rate)
    clock.advance(1)
    local.take("d", rate)
    assert set(local._state) == {"d"}


def test_cost_must_fit_the_bucket(local):
    with pytest.raises(ValueError):
        local.take("k", Rate(2, 60), cost=3)
    with pytest.raises(ValueError):
        take("k", Rate(2, 60), cost=0)


# --- several buckets at once, and the key check in the same round trip -----------------------------


@pytest.mark.redis
@pytest.mark.parametrize("which", ["redis", "local"])
def test_take_all_admits_only_when_every_bucket_has_a_token(client, clock, which):
    rb = RedisBucket(client) if which == "redis" else LocalBucket(monotonic=lambda: clock.mono,
                                                                   wall=lambda: clock.wall)
    ip, account = bucket_key(f"ip-{uuid.uuid4().hex}", "login"), bucket_key(f"acct-{uuid.uuid4().hex}", "login")
    wide, narrow = Rate(5, 3600), Rate(2, 3600)
    first = rb.take_all([(ip, wide), (account, narrow)])
    assert first.allowed and (first.limit, first.remaining) == (2, 1)  # headers of the tighter bucket
    assert rb.take_all([(ip, wide), (account, narrow)]).remaining == 0
    refused = rb.take_all([(ip, wide), (account, narrow)])
    assert not refused.allowed and refused.limit == 2 and refused.retry_after == 1800
    # The refusal took nothing from the bucket that still had tokens: 3 left of 5.
    assert rb.take(ip, wide).remaining == 2
    client.delete(ip, account)


@pytest.mark.redis
def test_take_all_is_one_script_call(client, key):
    rb = RedisBucket(client)
    calls = []
    real = rb._run

    def counted(keys: list[str], args: list[Any]) -> Any:
        calls.append(keys)
        return real(keys, args)

    rb._run = counted
    other = bucket_key(f"o-{uuid.uuid4().hex}", "read")
    rb.take_all([(key, Rate(3, 60)), (other, Rate(9, 60))])
    assert calls == [[key, other]]
    client.delete(other)


@pytest.mark.redis
def test_a_server_that_lost_the_script_gets_it_again(client, key):
    rb = RedisBucket(client)
    assert rb.take(key, Rate(3, 60)).remaining == 2
    client.script_flush()  # as after a Redis restart
    assert rb.take(key, Rate(3, 60)).remaining == 1


@pytest.mark.redis
def test_take_gated_takes_only_behind_a_present_non_negative_entry(client, key):
    rb = RedisBucket(client)
    gate = f"test:gate:{uuid.uuid4().hex}"
    rate = Rate(3, 60)
    assert rb.take_gated(gate, b"NEG", [(key, rate)]) == (None, None)  # missing entry: nothing taken
    client.set(gate, b"NEG")
    assert rb.take_gated(gate, b"NEG", [(key, rate)]) == (b"NEG", None)  # known-bad key: nothing taken
    assert not client.exists(key)
    client.set(gate, b"principal")
    raw, result = rb.take_gated(gate, b"NEG", [(key, rate)])
    assert raw == b"principal" and result is not None and (result.allowed, result.remaining) == (True, 2)
    client.delete(gate)


@pytest.mark.redis
def test_eight_processes_through_the_gated_script_admit_exactly_the_capacity(client):
    from tests.ratelimit._workers import hammer_gated

    rate = Rate(50, 3600)
    k, gate = bucket_key(f"race-{uuid.uuid4().hex}", "admin"), f"test:gate:{uuid.uuid4().hex}"
    client.set(gate, b"principal")
    admitted, _elapsed = race(client, hammer_gated, (redis_url(), gate, k, rate.limit, rate.period, 15))
    assert sum(admitted) == rate.limit, admitted  # 120 tries, 50 tokens, refill < 1 in the race
    client.delete(k, gate)
