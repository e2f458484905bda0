"""A private copy of the production stack for fault injection: its own MariaDB server and its own
Redis (AOF on, as in docker-compose), gunicorn and a Celery worker pointed at them.

Private servers let the suite stop the database or kill Redis without touching the machine's shared
ones. Everything listens on 127.0.0.1 only.

    with Stack(tmp_path) as stack:
        stack.mariadb.stop(); ...; stack.mariadb.start()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import MySQLdb
import redis

from tests.processes import ROOT, CeleryWorker, GunicornServer, free_port

DB_NAME = "persistence_chaos"


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout} s")


class PrivateMariaDB:
    def __init__(self, root: Path) -> None:
        self.datadir = root / "mariadb"
        self.port = free_port()
        self.socket = root / "mariadb.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "mariadb.log"

    def install(self) -> None:
        subprocess.run(
            [
                shutil.which("mariadb-install-db") or "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.socket}",
                "--user=root",
                "--skip-grant-tables",
                "--innodb-buffer-pool-size=128M",
                "--character-set-server=utf8mb4",
                f"--log-error={self.log}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: self.connect(db=None).close() is None, 60, "private MariaDB")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), as an operator's restart or a failover would do."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def connect(self, db: str | None = DB_NAME) -> MySQLdb.Connection:
        kwargs = {
            "host": "127.0.0.1",
            "port": self.port,
            "user": "root",
            "charset": "utf8mb4",
            "connect_timeout": 2,
        }
        if db:
            kwargs["db"] = db
        return MySQLdb.connect(**kwargs)

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{DB_NAME}"


class PrivateRedis:
    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        _wait(lambda: client.ping() and client.info("persistence")["loading"] == 0, 60, "private Redis")

    def kill(self) -> None:
        """SIGKILL: no shutdown save; only what the AOF already holds survives."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class Stack:
    """Private MariaDB + Redis, migrated, with gunicorn (2 workers) and one Celery worker."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mariadb = PrivateMariaDB(root)
        self.redis = PrivateRedis(root)
        self.web: GunicornServer | None = None
        self.worker: CeleryWorker | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
            "DATABASE_URL": self.mariadb.url,
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": self.redis.url.replace("/0", "/1"),
            "API_AUTH_ENABLED": "false",
            "BUFFER_FLUSH_SIZE": "500",
            "BUFFER_FLUSH_INTERVAL": "2",
            # Parallel flushers by default (the rest of the suite runs one shard): every fault must
            # hold with several shards flushed at once too. BUFFER_SHARDS=1 runs it unsharded.
            "BUFFER_SHARDS": os.environ.get("BUFFER_SHARDS", "4"),
            "BUFFER_LOCK_TTL": "3",
            "DATABASE_CONNECT_TIMEOUT": "2",
            "LOG_LEVEL": "WARNING",
        }

    def __enter__(self) -> Stack:
        self.mariadb.install()
        self.mariadb.start()
        conn = self.mariadb.connect(db=None)
        conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {DB_NAME} CHARACTER SET utf8mb4")
        conn.close()
        self.redis.start()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.web = GunicornServer(env=self.env, workers=2).__enter__()
        self.start_worker()
        return self

    def start_worker(self) -> None:
        # one worker process per shard (BUFFER_SHARDS, up to 4), so the shards flush in parallel
        concurrency = min(int(self.env["BUFFER_SHARDS"]), 4)
        self.worker = CeleryWorker(
            env=self.env,
            log_path=self.root / "worker.log",
            broker_url=self.env["CELERY_BROKER_URL"],
            concurrency=concurrency,
        )
        self.worker.__enter__()

    def __exit__(self, *exc: object) -> None:
        for part in (self.worker, self.web):
            if part is not None:
                with contextlib.suppress(Exception):  # already dead after a fault
                    part.__exit__(None, None, None)
        self.redis.kill()
        self.mariadb.stop()
