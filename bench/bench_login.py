"""B10, the password-login path: locked-out rejection, timing parity of unknown emails, lockout races.

Rows (targets from ``research/performance.md`` §7, B10):

* a locked account is refused ≥ 200× faster than one bcrypt-12 verification;
* a wrong password for a known email takes as long as any password for an unknown email (±10 %);
* a correct login costs one hash, no more (within 5 % of a raw ``bcrypt.checkpw``);
* 50 parallel wrong logins against a limit of 5 run the password hash exactly 5 times (overshoot 0),
  next to django-axes (``AxesStandaloneBackend`` + ``ModelBackend``, database handler) doing the same.

Hashes are counted by wrapping ``bcrypt.hashpw``, which Django's ``BCryptSHA256PasswordHasher`` calls
once per encode or verify, so every password check in every thread is seen whatever code path ran it.
"""

from __future__ import annotations

import hashlib
import secrets
import statistics
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import bcrypt
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, connections
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from bench.harness import Row, alternate, fmt_time, per_call, samples_note
from twig_auth.core.context import RequestContext
from twig_auth.exceptions import AccountLocked, InvalidCredentials
from twig_auth.passwords import lockout
from twig_auth.passwords.services import authenticate_password

PASSWORD = "Correct-Horse-9!"
WRONG = "Wrong-Battery-7?"
LIMIT = 5  # TWIG_AUTH LOCKOUT_MAX_ATTEMPTS and AXES_FAILURE_LIMIT
PARALLEL = 50
CLIENT_IP = "203.0.113.9"
CTX = RequestContext(ip=CLIENT_IP, user_agent="twig-bench")
AXES_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]


class HashCounter:
    """Count calls of ``bcrypt.hashpw`` from every thread while installed."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.count += 1


@contextmanager
def counting_hashes() -> Iterator[HashCounter]:
    counter = HashCounter()
    real = bcrypt.hashpw

    def counted(password: bytes, salt: bytes) -> bytes:
        counter.bump()
        return real(password, salt)

    bcrypt.hashpw = counted  # type: ignore[assignment]
    try:
        yield counter
    finally:
        bcrypt.hashpw = real  # type: ignore[assignment]


_password_hash = ""


def make_user() -> str:
    """Create a user with a fresh email and the bench password (BCryptSHA256, cost 12); return the email."""
    global _password_hash
    if not _password_hash:
        _password_hash = make_password(PASSWORD)
    email = f"bench-{secrets.token_hex(6)}@example.test"
    get_user_model()._default_manager.create(email=email, password=_password_hash)
    return email


def reset_lockout(email: str) -> None:
    lockout.get_store().succeed(lockout.identity_key(email))


def twig_login(email: str, password: str = WRONG) -> str:
    """Run one login through ``authenticate_password``; return ``ok``, ``invalid`` or ``locked``."""
    try:
        authenticate_password(email=email, password=password, context=CTX)
    except AccountLocked:
        return "locked"
    except InvalidCredentials:
        return "invalid"
    return "ok"


def axes_login(email: str, password: str = WRONG) -> str:
    """Run one login through ``django.contrib.auth.authenticate`` with django-axes in front."""
    request = RequestFactory().post("/login/", REMOTE_ADDR=CLIENT_IP, HTTP_USER_AGENT="twig-bench")
    user = authenticate(request=request, username=email, password=password)
    if user is not None:
        return "ok"
    return "locked" if getattr(request, "axes_locked_out", False) else "invalid"


# --- (a) a locked account is refused without hashing -----------------------------------------------


def locked_rejection(quick: bool) -> Row:
    email = make_user()
    for _ in range(LIMIT):
        twig_login(email)
    assert twig_login(email, PASSWORD) == "locked", "the account should be locked after 5 failures"
    peer_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(12))
    calls = 20 if quick else 100
    hashed: list[int] = []

    def ours() -> float:
        with counting_hashes() as counter:
            seconds = per_call(lambda: twig_login(email, PASSWORD), calls)
        hashed.append(counter.count)
        return seconds

    def peer() -> float:
        return per_call(lambda: bcrypt.checkpw(PASSWORD.encode(), peer_hash), 1)

    pair = alternate(ours, peer)
    with CaptureQueriesContext(connection) as queries:
        twig_login(email, PASSWORD)
    statements = ", ".join(q["sql"].split(" ", 1)[0] for q in queries.captured_queries)
    ratio = pair.peer / pair.ours
    return Row(
        "locked account refused vs one bcrypt-12 `checkpw`",
        fmt_time(pair.ours), fmt_time(pair.peer), f"{ratio:,.0f}× cheaper", "≥ 200× cheaper, ≤ 1 ms",
        ratio >= 200 and pair.ours <= 1e-3 and not any(hashed),
        f"{samples_note(pair, fmt_time)}; hashes while locked: {sum(hashed)}; SQL per rejection: "
        f"{len(queries.captured_queries)} ({statements})",
    )


# --- (b) unknown and known emails cost the same ------------------------------------------------------


def email_parity(quick: bool) -> Row:
    known = make_user()
    unknown = f"nobody-{secrets.token_hex(6)}@example.test"
    calls = 1 if quick else 3  # stays under the limit: the counter is reset before every sample

    def measure(email: str) -> Callable[[], float]:
        def sample() -> float:
            reset_lockout(email)
            return per_call(lambda: twig_login(email), calls)

        return sample

    pair = alternate(measure(known), measure(unknown), repeats=5 if quick else 7)
    reset_lockout(known)
    reset_lockout(unknown)
    ratio = pair.ours / pair.peer
    return Row(
        "wrong password: known email (ours) vs unknown email (peer column)",
        fmt_time(pair.ours), fmt_time(pair.peer), f"{ratio:.3f}", "0.9 – 1.1", 0.9 <= ratio <= 1.1,
        samples_note(pair, fmt_time),
    )


# --- (c) a correct login runs one hash -------------------------------------------------------------


def verify_cost(quick: bool) -> Row:
    email = make_user()
    stored = get_user_model()._default_manager.get(email=email).password
    # BCryptSHA256 stores "bcrypt_sha256$<bcrypt hash>" and hashes hex(sha256(password)).
    raw_hash = stored.split("$", 1)[1].encode()
    prehashed = hashlib.sha256(PASSWORD.encode()).hexdigest().encode()
    assert bcrypt.checkpw(prehashed, raw_hash)

    def ours() -> float:
        result = ""

        def login() -> None:
            nonlocal result
            result = twig_login(email, PASSWORD)

        seconds = per_call(login, 1)
        assert result == "ok"
        return seconds

    def peer() -> float:
        return per_call(lambda: bcrypt.checkpw(prehashed, raw_hash), 1)

    pair = alternate(ours, peer, repeats=5 if quick else 7)
    ratio = pair.ours / pair.peer
    return Row(
        "correct login (`authenticate_password`) vs raw `bcrypt.checkpw`, same hash",
        fmt_time(pair.ours), fmt_time(pair.peer), f"{ratio:.3f}", "≤ 1.05 (one hash, no double hashing)",
        ratio <= 1.05, samples_note(pair, fmt_time),
    )


# --- (d) 50 parallel wrong logins against a limit of 5 ------------------------------------------------


def burst(attempt: Callable[[], str]) -> tuple[int, dict[str, int]]:
    """Start ``PARALLEL`` threads at once, each making one attempt; return hashes run and the outcomes."""
    barrier = threading.Barrier(PARALLEL)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            outcome = attempt()
        except Exception as exc:  # noqa: BLE001  (report, don't hide, a failure in a thread)
            outcome = f"error: {type(exc).__name__}: {exc}"
        finally:
            connections.close_all()  # this thread's own connections
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(PARALLEL)]
    with counting_hashes() as counter:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    tally: dict[str, int] = {}
    for outcome in outcomes:
        tally[outcome] = tally.get(outcome, 0) + 1
    return counter.count, tally


def overshoot(quick: bool) -> Row:
    from axes.utils import reset as axes_reset

    ours_email, axes_email = make_user(), make_user()
    tallies: dict[str, list[dict[str, int]]] = {"ours": [], "axes": []}
    still_locked: dict[str, bool] = {"ours": True, "axes": True}

    def ours() -> float:
        reset_lockout(ours_email)
        hashed, tally = burst(lambda: twig_login(ours_email))
        tallies["ours"].append(tally)
        with counting_hashes() as after:
            still_locked["ours"] &= twig_login(ours_email, PASSWORD) == "locked" and after.count == 0
        return float(hashed - LIMIT)

    def peer() -> float:
        axes_reset(username=axes_email)
        with override_settings(AUTHENTICATION_BACKENDS=AXES_BACKENDS):
            hashed, tally = burst(lambda: axes_login(axes_email))
            with counting_hashes() as after:
                still_locked["axes"] &= axes_login(axes_email, PASSWORD) == "locked" and after.count == 0
        tallies["axes"].append(tally)
        return float(hashed - LIMIT)

    pair = alternate(ours, peer)
    worst_ours = max(pair.ours_samples)
    peer_lo, peer_hi = min(pair.peer_samples), max(pair.peer_samples)
    store = type(lockout.get_store()).__name__
    errors = [k for t in tallies["ours"] + tallies["axes"] for k in t if k.startswith("error")]
    return Row(
        f"lockout overshoot: {PARALLEL} parallel wrong logins, limit {LIMIT} ({store} vs django-axes DB handler)",
        f"{worst_ours:.0f} extra hashes (worst of {len(pair.ours_samples)})",
        f"{statistics.median(pair.peer_samples):.0f} extra hashes (median; {peer_lo:.0f}–{peer_hi:.0f})",
        "—", "0 for ours", worst_ours == 0 and still_locked["ours"] and not errors,
        f"ours outcomes {tallies['ours']}; axes outcomes {tallies['axes']}; locked afterwards without "
        f"hashing: ours {still_locked['ours']}, axes {still_locked['axes']}"
        + (f"; thread errors: {sorted(set(errors))}" if errors else ""),
    )


def run(*, quick: bool) -> list[Row]:
    return [locked_rejection(quick), email_parity(quick), verify_cost(quick), overshoot(quick)]
