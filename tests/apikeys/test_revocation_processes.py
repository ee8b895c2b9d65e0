"""Revocation takes effect in every process at once.

On Redis a second OS process (its own interpreter, same Redis and test database) verifies the key from the
shared cache, the main process revokes, and the second process refuses the key on its very next check. On
the local-memory cache (one process only) the test asserts instead that revocation leaves no cached
verification behind in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.db import connection

from twig_auth.apikeys.services import revoke_api_key
from twig_auth.apikeys.verification import authenticate_key, digest_of
from twig_auth.conf import app_settings
from twig_auth.core.redis import get_redis, redis_configured
from twig_auth.exceptions import InvalidApiKey

ROOT = Path(__file__).resolve().parents[2]

WORKER = r"""
import json, sys
import django
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from twig_auth.apikeys.verification import authenticate_key
from twig_auth.exceptions import TwigAuthError

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    key = line.strip()
    with CaptureQueriesContext(connection) as queries:
        try:
            principal = authenticate_key(key)
            answer = {"ok": True, "id": principal.id}
        except TwigAuthError as exc:
            answer = {"ok": False, "code": exc.code, "detail": str(exc.detail)}
    answer["queries"] = len(queries)
    print(json.dumps(answer), flush=True)
"""


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


class Worker:
    def __init__(self) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "twig_project.settings", "DATABASE_URL": _database_url(),
               "REDIS_URL": django_settings.CACHES["default"]["LOCATION"],
               "CACHE_KEY_PREFIX": django_settings.CACHES["default"].get("KEY_PREFIX", ""),
               "TWIG_API_MODE": app_settings.API_MODE}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._read() == {"ready": True}

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"worker died: {self.proc.stderr.read()}")
        return json.loads(line)

    def verify(self, key: str) -> dict:
        self.proc.stdin.write(key + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()
            self.proc.wait()


@pytest.mark.django_db(transaction=True)
def test_revoked_key_is_rejected_on_every_worker(owner, issue, fast_bcrypt):
    key, plaintext = issue(owner, ["read"])
    assert authenticate_key(plaintext).id == key.pk  # the main process verifies: the shared cache is warm
    entry = f"twig:ak:v:{digest_of(plaintext)}"
    cache = caches[app_settings.REDIS_CACHE_ALIAS]
    assert cache.get(entry) is not None

    if not redis_configured():
        # The local-memory cache exists only in this process: no other worker can share it. Assert the
        # single-process promise: after revoke, nothing of the key is left in this process's cache.
        revoke_api_key(key=key)
        assert cache.get(entry) is None
        assert cache.get(f"twig:ak:i:{key.key_id}") is None
        assert not [k for k in cache._cache if "twig:ak:v:" in k]  # locmem internals: no verification at all
        with pytest.raises(InvalidApiKey):
            authenticate_key(plaintext)
        return

    worker = Worker()
    try:
        first = worker.verify(plaintext)
        assert first == {"ok": True, "id": key.pk, "queries": 0}  # served warm from the shared Redis cache
        revoke_api_key(key=key)
        assert not get_redis().keys(f"*twig:ak:v:{digest_of(plaintext)}")
        second = worker.verify(plaintext)
        assert second["ok"] is False and second["code"] == "invalid_api_key", second
        with pytest.raises(InvalidApiKey):
            authenticate_key(plaintext)
    finally:
        worker.close()
