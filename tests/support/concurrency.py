"""Run one callable in many threads released together, each on its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def race(n: int, attempt: Callable[[], object]) -> list[object]:
    """Return what ``attempt()`` returned (or raised) in each of ``n`` threads started at the same moment."""
    barrier = threading.Barrier(n)
    results: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait()
            outcome: object = attempt()
        except Exception as exc:  # noqa: BLE001  (the caller asserts on what each thread got)
            outcome = exc
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == n, "a thread did not finish"
    return results
