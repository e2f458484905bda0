"""Migrations apply from zero, and roll back, on SQLite and on MariaDB."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from django.db import connections

from tests.processes import ROOT, service_env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def _migrate_there_and_back(env: dict[str, str]) -> None:
    for args in (("migrate", "--noinput"), ("migrate", "translation", "zero"), ("migrate", "--noinput")):
        result = _manage(env, *args)
        assert result.returncode == 0, result.stderr
    result = _manage(env, "showmigrations", "translation")
    assert "[X] 0002_task_session_fk_cascade" in result.stdout
    result = _manage(env, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, f"models and migrations disagree:\n{result.stdout}"


def test_migrations_apply_from_zero_on_sqlite(tmp_path):
    _migrate_there_and_back(service_env(DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite3'}"))


@pytest.mark.django_db
def test_migrations_apply_from_zero_on_mariadb():
    if connections["default"].vendor != "mysql":
        pytest.skip("needs MariaDB")
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    with connections["default"].cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        env = service_env()
        env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
        _migrate_there_and_back(env)
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute(f"DROP DATABASE {name}")
