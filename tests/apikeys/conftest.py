"""Fixtures of the API key tests: key factory, bcrypt counter, cache round-trip counter, JSON helpers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import bcrypt
import pytest
from django.core.cache import caches

from twig_auth.apikeys.models import ApiKey
from twig_auth.apikeys.services import issue_api_key
from twig_auth.conf import app_settings
from twig_auth.core.redis import redis_configured
from twig_auth.orgs.models import Membership

HMAC_HASHER = "twig_auth.apikeys.hashers.HmacSha256KeyHasher"


def bearer(plaintext: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


@pytest.fixture
def issue(db: None) -> Callable[..., tuple[ApiKey, str]]:
    """``issue(member, scopes, environment="live", **kw)`` → ``(key, plaintext)`` through the service."""

    def make(member: Membership, scopes: list[str] | tuple[str, ...] = ("read",), environment: str = "live",
             name: str = "test key", **kw: Any) -> tuple[ApiKey, str]:
        return issue_api_key(creator=member, name=name, scopes=list(scopes), environment=environment, **kw)

    return make


@pytest.fixture
def fast_bcrypt(settings: Any) -> None:
    """bcrypt cost 4 instead of 12 for tests that count hashes rather than time them (the cost 12 default is
    asserted in test_hashers and used by the concurrency test). Still the real BcryptKeyHasher."""
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_BCRYPT_ROUNDS": 4}


@pytest.fixture
def hmac_hasher(settings: Any) -> None:
    settings.TWIG_AUTH = {**settings.TWIG_AUTH, "API_KEY_HASHER": HMAC_HASHER}


class BcryptCounter:
    """Counts ``bcrypt.checkpw`` (verifications) and ``bcrypt.hashpw`` (new hashes), across threads."""

    def __init__(self) -> None:
        self.checks = 0
        self.hashes = 0
        self._lock = threading.Lock()

    def bump(self, attr: str) -> None:
        with self._lock:
            setattr(self, attr, getattr(self, attr) + 1)

    def reset(self) -> None:
        with self._lock:
            self.checks = self.hashes = 0


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> BcryptCounter:
    """Patch the ``bcrypt`` module functions that twig_auth/apikeys/hashers.py calls (``bcrypt.checkpw``,
    ``bcrypt.hashpw``); it looks them up on the module at call time."""
    counter = BcryptCounter()
    real_check, real_hash = bcrypt.checkpw, bcrypt.hashpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        counter.bump("checks")
        return real_check(password, hashed)

    def hashpw(password: bytes, salt: bytes) -> bytes:
        counter.bump("hashes")
        return real_hash(password, salt)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    monkeypatch.setattr(bcrypt, "hashpw", hashpw)
    return counter


_CACHE_METHODS = ("get", "get_many", "set", "set_many", "add", "incr", "decr", "delete", "delete_many", "touch",
                  "has_key", "get_or_set", "clear")


class StoreTrips:
    """Round trips to the verification cache.

    On Redis (django-redis) every network round trip is one ``send_packed_command`` on a connection (a
    pipeline sends all its commands in one); on the local-memory cache each outermost call of a cache method
    counts as one (``get_many`` calling ``get`` inside is still one)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.count = 0
        self.calls: list[str] = []
        self._local = threading.local()

    def reset(self) -> None:
        self.count = 0
        self.calls = []


@pytest.fixture
def store_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreTrips]:
    if redis_configured():
        from redis.connection import AbstractConnection

        trips = StoreTrips("redis")
        real = AbstractConnection.send_packed_command

        def send_packed_command(self: Any, command: Any, check_health: bool = True) -> Any:
            trips.count += 1
            trips.calls.append(repr(command)[:80])
            return real(self, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", send_packed_command)
        yield trips
        return
    trips = StoreTrips("locmem")
    cache = caches[app_settings.REDIS_CACHE_ALIAS]
    for name in _CACHE_METHODS:
        real_method = getattr(cache, name)

        def wrapper(*args: Any, __real: Any = real_method, __name: str = name, **kwargs: Any) -> Any:
            depth = getattr(trips._local, "depth", 0)
            if depth == 0:
                trips.count += 1
                trips.calls.append(__name)
            trips._local.depth = depth + 1
            try:
                return __real(*args, **kwargs)
            finally:
                trips._local.depth = depth

        monkeypatch.setattr(cache, name, wrapper)
    yield trips


def sql_of(captured: Any) -> list[str]:
    """The SQL text of a ``django_assert_max_num_queries`` / ``CaptureQueriesContext`` capture."""
    return [q["sql"] for q in captured.captured_queries]
