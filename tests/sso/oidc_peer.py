"""oidc-provider (panva, node) as the real OpenID provider of the OIDC SSO tests: started from
tests/peers/oidc/server.mjs on a free port, with the redirect URIs the test's Django host will use."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

OIDC_DIR = Path(__file__).resolve().parents[1] / "peers" / "oidc"
# Fixed connection ids: a generic OIDC connection's redirect URI contains its id, and the OP must know it.
CUSTOM_ID = "sso_testcustomoidc01"
OKTA_ID = "sso_testokta0000001"
CALLBACKS = ("/sso/oidc/accounts/google/login/callback/", "/sso/oidc/accounts/microsoft/login/callback/",
             f"/sso/oidc/accounts/oidc/{CUSTOM_ID}/login/callback/",
             f"/sso/oidc/accounts/oidc/{OKTA_ID}/login/callback/", "/connectors/callback/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def run_op(log: Path, django_base: str, *, auto_login: bool = True,
           extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Start oidc-provider; yield its issuer URL; stop it (by its own pid) afterwards. ``extra_env``: more variables
    of server.mjs (``ROTATE_RT``, ``AT_TTL``)."""
    node = shutil.which("node")
    if not node:
        pytest.fail("node is missing: apt-get install -y nodejs npm (scripts/test installs it).", pytrace=False)
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(f"oidc-provider is not installed: npm ci --prefix {OIDC_DIR} (scripts/test runs it).",
                    pytrace=False)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "AUTO_LOGIN": "1" if auto_login else "0",
           "REDIRECT_URIS": ",".join(django_base + path for path in CALLBACKS), **(extra_env or {})}
    with open(log, "w") as fh:
        process = subprocess.Popen([node, "server.mjs"], cwd=OIDC_DIR, env=env, stdout=fh, stderr=subprocess.STDOUT)
    t0 = time.perf_counter()
    try:
        while "READY" not in log.read_text():
            if process.poll() is not None or time.perf_counter() - t0 > 20:
                pytest.fail("oidc-provider did not start:\n" + log.read_text(), pytrace=False)
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
