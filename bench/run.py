"""Run every ``bench/bench_*.py`` against a throwaway database and print one Markdown table.

Usage: ``.venv/bin/python bench/run.py [--quick] [--verbose] [--timer wall|cpu] [-k NAME] [--strict]``

SQLite (a temporary file) by default; PostgreSQL when ``DATABASE_URL`` is set, and the Redis lockout
store when ``REDIS_URL`` names a Redis server too. The database is created and migrated here and
dropped at the end; only keys the benchmarks create are touched in Redis.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _discover(pattern: str | None) -> list[str]:
    names = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    return [n for n in names if pattern is None or pattern in n]


def _versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for dist in ("Django", "bcrypt", "django-axes", "redis", "psycopg", "cedarpy", "casbin"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(parts)


def _environment() -> str:
    from django.db import connection

    from twig_auth.passwords.lockout import get_store

    return (f"database: {connection.vendor} (`{connection.settings_dict['NAME']}`); lockout store: "
            f"{type(get_store()).__name__}; {os.cpu_count()} CPUs; {_versions()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the twig_auth benchmarks and print one Markdown table.")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (still 5 repeats)")
    parser.add_argument("--verbose", action="store_true", help="print every sample under the table")
    parser.add_argument("-k", dest="pattern", help="run only bench modules whose name contains this")
    parser.add_argument("--timer", choices=["wall", "cpu"], default="wall",
                        help="clock of timed samples: wall time (default) or the thread's CPU time")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    tmpdir = None
    if not os.environ.get("DATABASE_URL"):
        tmpdir = tempfile.mkdtemp(prefix="twig-bench-")
        os.environ["BENCH_SQLITE_PATH"] = str(Path(tmpdir) / "bench.sqlite3")

    import django

    django.setup()
    from django.db import connection, connections
    from django.test.utils import setup_test_environment, teardown_test_environment

    from bench.harness import Row, markdown_table, set_timer

    set_timer(args.timer)
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    rows: list[Row] = []
    started = time.perf_counter()
    try:
        print(f"# twig_auth benchmarks{' (quick)' if args.quick else ''}\n")
        print(f"{_environment()}; timer: {args.timer}\n", flush=True)
        durations: list[str] = []
        for name in _discover(args.pattern):
            module = importlib.import_module(f"bench.{name}")
            run: Callable[..., list[Row]] = module.run
            t0 = time.perf_counter()
            rows.extend(run(quick=args.quick))
            durations.append(f"{name} {time.perf_counter() - t0:.0f} s")
        print(markdown_table(rows))
        if args.verbose:
            print()
            for row in rows:
                if row.detail:
                    print(f"- {row.benchmark}: {row.detail}")
        print(f"\n{len(rows)} rows in {time.perf_counter() - started:.0f} s ({', '.join(durations)}); "
              "values are medians of alternating runs in this process.")
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return 1 if args.strict and any(r.met is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
