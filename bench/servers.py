"""Private servers for the soak (``bench/soak.py``) and the outage tests: a PostgreSQL cluster, a
redis-server and gunicorn, each on a free loopback port, each started and stopped by whoever made it.

They never touch the shared PostgreSQL (5432) or Redis (6379) other tests use. PostgreSQL comes from the
Debian binaries in ``/usr/lib/postgresql/<version>/bin`` (``initdb`` refuses to run as root, so as root the
cluster belongs to the ``postgres`` user and its commands run through ``runuser``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


class ServerError(RuntimeError):
    """A private server could not be found, started or stopped."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            if proc is not None and proc.poll() is not None:
                return False
            time.sleep(0.1)
    return False


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL binary directory, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: [int(x) for x in p.parent.parent.name.split(".") if x.isdigit()])
    return found[-1].parent if found else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temporary directory, on a free port, trust auth on loopback."""

    def __init__(self, base: Path | None = None) -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise ServerError("PostgreSQL server binaries are missing (apt-get install -y postgresql)")
        self.bin = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="twig-pg-", dir=base))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")
        if result.returncode != 0:
            output = result.stderr[-1500:] or result.stdout[-1500:]
            raise ServerError(f"{args[0]} failed ({result.returncode}): {output}")
        return result

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _options(self) -> str:
        # fsync off: a throwaway cluster on a shared disk (clean shutdowns and restarts still lose nothing);
        # the unix socket in our own directory, TCP on loopback only.
        return (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
                "-c full_page_writes=off -c max_connections=60 -c shared_buffers=64MB")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-w", "-t", "60",
                  "start", timeout=90)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", timeout=90)

    def restart(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-m", mode, "-w",
                  "-t", "60", "restart", timeout=90)

    def running(self) -> bool:
        cmd = [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, cwd="/").returncode == 0

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def createdb(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def cleanup(self) -> None:
        """Stop (immediately) if running and delete the cluster."""
        try:
            if self.data.exists() and self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server without persistence on a free port; SIGTERM stops it, a restart comes back empty."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServerError("redis-server is missing (apt-get install -y redis-server)")
        self.exe = exe
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", tempfile.gettempdir()],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise ServerError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stopping the container would."""
        if self.proc is not None:
            if self.paused:
                self.resume()
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the port stays open, every call hangs until the client's socket timeout."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False


class Gunicorn:
    """The reference project under gunicorn (sync workers) on a free loopback port; its log in a file."""

    def __init__(self, env: dict[str, str], workers: int = 4, log: IO[bytes] | None = None,
                 timeout: int = 30) -> None:
        self.port = free_port()
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.workers = workers
        self.timeout = timeout
        self.log = log if log is not None else tempfile.TemporaryFile()  # noqa: SIM115  (lives with the server)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = Path(sys.executable).parent / "gunicorn"
        self.proc = subprocess.Popen(
            [str(exe), "-w", str(self.workers), "-k", "sync", "-b", f"127.0.0.1:{self.port}", "--timeout",
             str(self.timeout), "--log-level", "warning", "twig_project.wsgi:application"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for_port(self.port, 60, self.proc):
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-3000:]
            self.stop()
            raise ServerError(f"gunicorn did not start: {tail}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def read_log(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """Run ``manage.py`` with ``env`` over the current environment; return stdout; raise on failure."""
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    if result.returncode != 0:
        raise ServerError(f"manage.py {' '.join(args)} failed: {result.stderr[-3000:]}")
    return result.stdout
