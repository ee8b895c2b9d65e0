"""B2, requests per second through a real server: API key + scope check vs no auth vs ``HasAPIKey``.

One gunicorn sync worker (``-w 1``) per cache configuration serves ``bench/urls.py`` with
``bench/settings_http.py`` (full project middleware, ``DEBUG`` off) on 127.0.0.1, against the database this
run created. The load tool is ``wrk -t1 -c1`` (one connection, as ``research/performance.md`` §1.1 measured);
without wrk, a Python ``http.client`` loop in one thread does the same job (the table says which ran).

Variants, measured in rotating order, each for ``repeats`` × ``seconds``:

* A: ``/ours``, ``ApiKeyAuthentication`` + ``HasScope`` + ``IsOrgMember`` with a warm key (LocMemCache; and
  Redis when ``REDIS_URL`` is set, from a second server);
* A': ``/ours-isauth``, the same with DRF's ``IsAuthenticated`` (LocMemCache), which is what the project's
  ``DEFAULT_PERMISSION_CLASSES`` gives a plain ``APIView``;
* B: ``/none``, the same view with no authentication: the ceiling; target A/B ≥ 0.8× (≥ 0.6× here);
* C: ``/hasapikey``, the same view behind djangorestframework-api-key's ``HasAPIKey``; target A/C ≥ 1.5×.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.db import connection

from bench.bench_apikeys import our_key, peer_key
from bench.harness import Pair, Row

ROOT = Path(__file__).resolve().parent.parent
WRK = shutil.which("wrk")


@dataclass(frozen=True)
class Variant:
    name: str
    server: str  # "locmem" or "redis"
    path: str
    authorization: str | None


@dataclass
class Result:
    rps: list[float]
    p99_ms: list[float]
    errors: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(cache: str) -> Iterator[int]:
    """Start one sync gunicorn worker on a free loopback port; yield the port; always stop it."""
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings_http", "BENCH_HTTP_CACHE": cache,
           "BENCH_DB_NAME": str(connection.settings_dict["NAME"]), "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as log:
        yield from _serve(cache, port, env, log)


def _serve(cache: str, port: int, env: dict[str, str], log: IO[bytes]) -> Iterator[int]:
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "twig_project.wsgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"gunicorn ({cache}) did not start: {log.read().decode()[-2000:]}") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(port: int, variant: Variant) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", f"/{variant.path}", headers=_headers(variant))
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _headers(variant: Variant) -> dict[str, str]:
    return {"Authorization": variant.authorization} if variant.authorization else {}


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def load_wrk(port: int, variant: Variant, seconds: float) -> tuple[float, float, int]:
    """Run ``wrk -t1 -c1``; return requests/s, p99 in ms and the count of non-2xx responses."""
    cmd = [WRK, "-t1", "-c1", f"-d{seconds:g}s", "--latency", f"http://127.0.0.1:{port}/{variant.path}"]
    if variant.authorization:
        cmd[1:1] = ["-H", f"Authorization: {variant.authorization}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return (rps, float(p99.group(1)) * _UNITS[p99.group(2)] if p99 else float("nan"),
            int(errors.group(1)) if errors else 0)


def load_python(port: int, variant: Variant, seconds: float) -> tuple[float, float, int]:
    """The fallback load generator: one thread, one connection at a time (reopened when the server closes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = _headers(variant)
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while (now := time.perf_counter()) < end:
        conn.request("GET", f"/{variant.path}", headers=headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - now)
        errors += response.status != 200
        if response.will_close:
            conn.close()
    elapsed = time.perf_counter() - start
    conn.close()
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99)] * 1e3, errors


def measure(variants: list[Variant], ports: dict[str, int], repeats: int, seconds: float) -> dict[str, Result]:
    """Load every variant ``repeats`` times, rotating which goes first each round."""
    load = load_wrk if WRK else load_python
    results = {v.name: Result([], []) for v in variants}
    for i in range(repeats):
        for variant in variants[i % len(variants):] + variants[:i % len(variants)]:
            rps, p99, errors = load(ports[variant.server], variant, seconds)
            result = results[variant.name]
            result.rps.append(rps)
            result.p99_ms.append(p99)
            result.errors += errors
    return results


def _pair(ours: Result, peer: Result) -> Pair:
    return Pair(statistics.median(ours.rps), statistics.median(peer.rps), tuple(ours.rps), tuple(peer.rps))


def _note(name: str, result: Result) -> str:
    return (f"{name}: rps [{', '.join(f'{v:,.0f}' for v in result.rps)}], p99 median "
            f"{statistics.median(result.p99_ms):.2f} ms, non-2xx {result.errors}")


def run(*, quick: bool) -> list[Row]:
    repeats, seconds = (5, 1.0) if quick else (5, 3.0)
    key = our_key(["read"])
    peer = peer_key()
    servers = ["locmem"] + (["redis"] if os.environ.get("REDIS_URL") else [])
    variants = [Variant(f"A ({s})", s, "ours", f"Bearer {key}") for s in servers] + [
        Variant("A' (IsAuthenticated)", "locmem", "ours-isauth", f"Bearer {key}"),
        Variant("B (no auth)", "locmem", "none", None),
        Variant("C (HasAPIKey)", "locmem", "hasapikey", f"Api-Key {peer}"),
    ]
    tool = "wrk -t1 -c1" if WRK else "Python http.client loop, 1 connection (wrk not installed)"
    with ExitStack() as stack:
        ports = {s: stack.enter_context(gunicorn(s)) for s in servers}
        for variant in variants:  # warm up: the first API-key request per server pays bcrypt once
            for _ in range(20):
                status = get(ports[variant.server], variant)
                assert status == 200, f"{variant.name} answered {status}"
        results = measure(variants, ports, repeats, seconds)
    base, hasapikey = results["B (no auth)"], results["C (HasAPIKey)"]
    rows = []
    for server in servers:
        ours = results[f"A ({server})"]
        ok = ours.errors == 0 and base.errors == 0 and hasapikey.errors == 0
        label = "LocMemCache" if server == "locmem" else "Redis cache"
        vs_base, vs_peer = _pair(ours, base), _pair(ours, hasapikey)
        detail = "; ".join([f"{repeats} × {seconds:g} s per variant, {tool}, gunicorn -w 1 sync",
                            _note("ours", ours), _note("no auth", base), _note("HasAPIKey", hasapikey)])
        rows.append(Row(f"HTTP rps: API key + `HasScope` ({label}) vs no auth", f"{vs_base.ours:,.0f} rps",
                        f"{vs_base.peer:,.0f} rps", f"{vs_base.ours / vs_base.peer:.2f}×",
                        "≥ 0.8× (≥ 0.6× on this machine)", ok and vs_base.ours / vs_base.peer >= 0.6, detail))
        rows.append(Row(f"HTTP rps: API key + `HasScope` ({label}) vs `HasAPIKey`", f"{vs_peer.ours:,.0f} rps",
                        f"{vs_peer.peer:,.0f} rps", f"{vs_peer.ours / vs_peer.peer:.2f}×", "≥ 1.5×",
                        ok and vs_peer.ours / vs_peer.peer >= 1.5))
    isauth = results["A' (IsAuthenticated)"]
    pair = _pair(isauth, base)
    rows.append(Row("HTTP rps: API key + `HasScope` + DRF `IsAuthenticated` (LocMemCache) vs no auth",
                    f"{pair.ours:,.0f} rps", f"{pair.peer:,.0f} rps", f"{pair.ours / pair.peer:.2f}×",
                    "≥ 0.8× (≥ 0.6× on this machine)", isauth.errors == 0 and pair.ours / pair.peer >= 0.6,
                    _note("ours with IsAuthenticated", isauth)))
    return rows
