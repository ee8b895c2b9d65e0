from __future__ import annotations

import threading
from collections.abc import Iterator

import bcrypt
import pytest


class HashCounter:
    """Count bcrypt work (verify of a stored hash, or encode of a throwaway one) across threads."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.count += 1


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[HashCounter]:
    """Count every bcrypt computation (Django's BCryptSHA256 hasher calls ``bcrypt.hashpw`` once per
    encode or verify)."""
    counter = HashCounter()
    real = bcrypt.hashpw

    def counted(password: bytes, salt: bytes) -> bytes:
        counter.bump()
        return real(password, salt)

    monkeypatch.setattr(bcrypt, "hashpw", counted)
    yield counter
