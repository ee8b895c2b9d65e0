"""What every benchmark shares: alternating timed runs, medians, and the rows of the result table.

Rules (``research/performance.md`` §7): ours and the peer run in the same process and the same run,
in alternating order, each measured at least five times; the table reports medians and their ratio,
because absolute numbers on a small shared machine are noisy.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

MIN_REPEATS = 5

# The clock of every timed sample: wall time by default (what a client sees); ``set_timer("cpu")``
# switches to the calling thread's CPU time, which a busy shared machine disturbs far less (it leaves
# out waiting: for the CPU, for fsync, for the database server).
_TIMERS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
_timer: list[str] = ["wall"]


def set_timer(name: str) -> None:
    """Choose the clock of :func:`per_call`: ``wall`` or ``cpu``."""
    if name not in _TIMERS:
        raise ValueError(f"timer must be one of {', '.join(_TIMERS)}")
    _timer[0] = name


def timer_name() -> str:
    return _timer[0]


@dataclass(frozen=True)
class Row:
    """One line of the result table. ``met`` is None when the row is reported, not judged."""

    benchmark: str
    ours: str
    peer: str
    ratio: str
    target: str
    met: bool | None
    detail: str = ""  # the raw samples and anything else worth a footnote (printed with --verbose)


@dataclass(frozen=True)
class Pair:
    """Medians of ours and the peer, and every sample."""

    ours: float
    peer: float
    ours_samples: tuple[float, ...]
    peer_samples: tuple[float, ...]


def per_call(fn: Callable[[], object], calls: int) -> float:
    """Return the mean time of one call of ``fn`` over ``calls`` consecutive calls, in seconds."""
    clock = _TIMERS[_timer[0]]
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls


def alternate(ours: Callable[[], float], peer: Callable[[], float], repeats: int = MIN_REPEATS) -> Pair:
    """Run ``ours`` and ``peer`` ``repeats`` times each, alternating which goes first; return medians.

    Each callable does one measurement and returns its value (a time per call, a count …), so it
    can keep its own setup, such as resetting a lockout counter, outside the timed part.
    """
    repeats = max(repeats, MIN_REPEATS)
    ours_samples: list[float] = []
    peer_samples: list[float] = []
    for i in range(repeats):
        order = [(ours, ours_samples), (peer, peer_samples)]
        for fn, samples in order if i % 2 == 0 else reversed(order):
            samples.append(fn())
    return Pair(statistics.median(ours_samples), statistics.median(peer_samples),
                tuple(ours_samples), tuple(peer_samples))


def samples_note(pair: Pair, fmt: Callable[[float], str]) -> str:
    """Return the samples of a pair as one footnote line."""
    return (f"ours [{', '.join(fmt(v) for v in pair.ours_samples)}]; "
            f"peer [{', '.join(fmt(v) for v in pair.peer_samples)}]")


def fmt_time(seconds: float) -> str:
    """Return a time per operation with a unit that keeps three significant digits."""
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def markdown_table(rows: list[Row]) -> str:
    """Return the rows as one Markdown table."""
    lines = ["| benchmark | ours | peer | ratio | target | met? |", "|---|---|---|---|---|---|"]
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.benchmark} | {r.ours} | {r.peer} | {r.ratio} | {r.target} | {met} |")
    return "\n".join(lines)
