"""Real processes for integration tests: gunicorn (and later Celery) started as subprocesses.

with GunicornServer(env={"DATABASE_URL": url}) as server:
    httpx.get(server.url + "/health")
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(**overrides: str) -> dict[str, str]:
    """The environment of a subprocess of the service: the test settings' databases by default."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test"}
    if db["ENGINE"].endswith("mysql"):
        user, host, port = db.get("USER") or "root", db.get("HOST") or "127.0.0.1", db.get("PORT") or 3306
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        env["DATABASE_URL"] = f"mysql://{user}{password}@{host}:{port}/{db['NAME']}"
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(overrides)
    return env


class GunicornServer:
    """A gunicorn serving the project on a free port, stopped (SIGTERM) on exit."""

    def __init__(
        self, env: dict[str, str] | None = None, workers: int = 1, wait_healthy: bool = True
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env if env is not None else service_env()
        self.workers = workers
        self.wait_healthy = wait_healthy
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = ""

    def __enter__(self) -> GunicornServer:
        # A file, not a pipe: nobody reads a pipe while the server runs, and a full one (64 KiB of
        # log lines, e.g. during an outage) would block every worker on its next log line.
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "persistence_site.wsgi:application",
                "-c",
                "persistence_site/gunicorn_conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self._read_log()}")
            try:
                response = httpx.get(self.url + "/health", timeout=10)
                if response.status_code == 200 or not self.wait_healthy:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError("gunicorn did not become ready in 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.output = self._read_log()
            self._log.close()

    def _read_log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")


class CeleryWorker:
    """A real Celery worker (its own process group, so SIGKILL takes the pool children too)."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        concurrency: int = 1,
        log_path: Path | None = None,
        broker_url: str | None = None,
    ) -> None:
        self.env = env if env is not None else service_env()
        self.broker_url = broker_url
        self.concurrency = concurrency
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CeleryWorker:
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "persistence_site",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        from celery import Celery

        from persistence_site.celery import app as project_app

        app = Celery(broker=self.broker_url) if self.broker_url else project_app
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.proc.returncode}")
            try:
                if app.control.ping(timeout=0.5):
                    return
            except Exception:  # broker not answering yet
                pass
            time.sleep(0.2)
        raise RuntimeError("celery worker did not answer a ping in 60 s")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): no chance to clean up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
