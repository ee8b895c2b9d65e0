"""twig_auth works with any AUTH_USER_MODEL that has an email field, here Django's stock auth.User."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_sign_in_lockout_orgs_and_api_keys_work_with_djangos_stock_user_model(tmp_path):
    env = {**os.environ, "ALT_DB_PATH": str(tmp_path / "alt.sqlite3"), "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    result = subprocess.run([sys.executable, "-m", "tests.support.alt_user_check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK auth.User" in result.stdout
