"""The Redis outage breaker: backoff, one probe, one warning per outage, recovery hooks (fake clocks)."""

from __future__ import annotations

import logging
import threading

import pytest

from twig_auth.core import outage
from twig_auth.core.cache import UNAVAILABLE, attempt, safe
from twig_auth.core.outage import Breaker


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clocks() -> tuple[Clock, Clock]:
    return Clock(), Clock(1_800_000_000.0)


@pytest.fixture
def breaker(clocks: tuple[Clock, Clock]) -> Breaker:
    mono, wall = clocks
    return Breaker(monotonic=mono, wall=wall)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "twig_auth.core.outage" and r.levelno >= logging.WARNING]


def test_closed_by_default_and_success_is_a_no_op(breaker: Breaker) -> None:
    calls: list[float] = []
    breaker.add_hook(calls.append)
    breaker.success()
    assert breaker.available() and calls == [] and breaker.outage_started is None


def test_a_failure_opens_for_one_second_then_exactly_one_caller_probes(breaker, clocks, caplog) -> None:
    mono, wall = clocks
    with caplog.at_level(logging.INFO, logger="twig_auth.core.outage"):
        breaker.failure("API key verification")
    assert breaker.outage_started == wall.t
    assert not breaker.available()
    mono.t += 0.999
    assert not breaker.available()
    mono.t += 0.001
    assert breaker.available()  # the probe
    assert not breaker.available() and not breaker.available()  # everyone else: fallback while it probes
    [record] = warnings_of(caplog)
    assert "API key verification" in record.getMessage() and record.exc_info is None


def test_backoff_doubles_up_to_thirty_seconds(breaker, clocks) -> None:
    mono, _ = clocks
    breaker.failure("x")
    waits = []
    for _ in range(8):
        start = mono.t
        while not breaker.available():
            mono.t += 0.25
        waits.append(mono.t - start)
        breaker.failure("x")  # the probe failed
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]


def test_one_warning_per_outage_and_hooks_run_once_with_the_start(breaker, clocks, caplog) -> None:
    mono, wall = clocks
    calls: list[float] = []
    breaker.add_hook(calls.append)
    breaker.add_hook(calls.append)  # registering twice keeps one
    with caplog.at_level(logging.INFO, logger="twig_auth.core.outage"):
        started = wall.t
        breaker.failure("a")
        wall.t += 5
        mono.t += 1
        breaker.failure("b")
        breaker.failure("c")
        assert len(warnings_of(caplog)) == 1
        breaker.success()
        breaker.success()
        assert calls == [started]
        wall.t += 100
        breaker.failure("d")  # a new outage: a new warning, a new start
        breaker.success()
    assert calls == [started, started + 105]
    assert len(warnings_of(caplog)) == 2


def test_a_failing_hook_continues_the_same_outage(breaker, clocks, caplog) -> None:
    mono, wall = clocks
    seen: list[float] = []

    def flaky(started: float) -> None:
        seen.append(started)
        if len(seen) == 1:
            raise ConnectionError("down again")

    breaker.add_hook(flaky)
    started = wall.t
    with caplog.at_level(logging.INFO, logger="twig_auth.core.outage"):
        breaker.failure("a")
        wall.t += 50
        breaker.success()
        assert breaker.outage_started == started and not breaker.available()
        mono.t += 60
        assert breaker.available()
        breaker.success()
    assert seen == [started, started] and breaker.outage_started is None
    assert len(warnings_of(caplog)) == 1


def test_thread_safe_one_warning_and_one_hook_run(breaker, caplog) -> None:
    calls: list[float] = []
    breaker.add_hook(calls.append)
    barrier = threading.Barrier(16)

    def hammer() -> None:
        barrier.wait()
        for _ in range(200):
            breaker.failure("x")

    with caplog.at_level(logging.WARNING, logger="twig_auth.core.outage"):
        threads = [threading.Thread(target=hammer) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(warnings_of(caplog)) == 1

        barrier2 = threading.Barrier(16)

        def close() -> None:
            barrier2.wait()
            breaker.success()

        threads = [threading.Thread(target=close) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(calls) == 1


def test_attempt_reports_to_the_module_breaker_and_skips_while_open(caplog) -> None:
    outage.reset()
    calls = []

    def down() -> None:
        calls.append(1)
        raise ConnectionRefusedError("no")

    try:
        with caplog.at_level(logging.WARNING, logger="twig_auth.core.outage"):
            assert attempt("test", down) is UNAVAILABLE
            assert attempt("test", down) is UNAVAILABLE
            assert safe("test", lambda: 1, fallback=7) == 7  # skipped: no call at all while open
        assert calls == [1] and outage.outage_started() is not None and not outage.redis_available()
        assert len(warnings_of(caplog)) == 1
        with pytest.raises(ValueError):  # not a connection error: raised as it is
            outage.reset()
            attempt("test", int, "x")
    finally:
        outage.reset()
    assert not UNAVAILABLE and safe("test", lambda: 3) == 3
