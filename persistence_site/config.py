"""Where every setting comes from: environment variables, then an optional YAML file.

The YAML file named by ``PERSISTENCE_CONFIG`` holds the same keys as the environment
(``BUFFER_FLUSH_SIZE: 500``); a variable set in the environment always wins over the file.
Parsing (URLs, booleans, lists) is django-environ's.

    env = load_env()
    DATABASES = {"default": database_config(env)}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import environ
import yaml
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

#: The embedded default: one SQLite file in the project's data directory.
DEFAULT_DATABASE_URL = f"sqlite:///{BASE_DIR / 'data' / 'persistence.sqlite3'}"

LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _yaml_values(path: str) -> dict[str, str]:
    """Read the YAML file as environment-style strings (keys upper-cased)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ImproperlyConfigured(f"PERSISTENCE_CONFIG={path!r} cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ImproperlyConfigured(f"PERSISTENCE_CONFIG={path!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ImproperlyConfigured(f"PERSISTENCE_CONFIG={path!r} must hold a mapping of KEY: value")
    values: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | tuple):
            text = ",".join(str(item) for item in value)
        else:
            text = str(value)
        values[str(key).upper()] = text
    return values


def load_env(source: Mapping[str, str] | None = None) -> environ.Env:
    """An ``environ.Env`` over the YAML file's values overlaid by the environment."""
    environment = dict(os.environ if source is None else source)
    path = environment.get("PERSISTENCE_CONFIG")
    merged = {**_yaml_values(path), **environment} if path else environment
    env = environ.Env()
    env.ENVIRON = merged
    return env


def database_config(env: environ.Env, default: str = DEFAULT_DATABASE_URL) -> dict[str, Any]:
    """Django ``DATABASES['default']`` from ``DATABASE_URL`` (``mysql://`` or ``sqlite:///``)."""
    url = env.str("DATABASE_URL", default=default)
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types for a bad URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
    engine = config.get("ENGINE", "")
    if engine == "django.db.backends.mysql":
        options = config.setdefault("OPTIONS", {})
        options.setdefault("charset", "utf8mb4")
        # Strict mode turns silent truncation into errors; READ COMMITTED avoids gap locks
        # between concurrent upserts of neighbouring keys.
        options.setdefault("init_command", "SET sql_mode='STRICT_TRANS_TABLES'")
        options.setdefault("isolation_level", "read committed")
        options.setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
        config.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
        config["CONN_HEALTH_CHECKS"] = True
    elif engine == "django.db.backends.sqlite3":
        name = config.get("NAME") or ""
        if name and name != ":memory:":
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        # The embedded write buffer lives in this file too (storage_backends.sqlite_buffer), so
        # these settings carry its promise that a 202 is on disk:
        # - WAL: readers never wait for the writer (requests read while the flusher writes).
        # - synchronous=FULL: each commit is fsynced before it returns, so an acknowledged write
        #   survives a power loss too (NORMAL survives kill -9 but may drop the last commits then).
        # - IMMEDIATE transactions take the single write lock at BEGIN, so concurrent writers (threads,
        #   gunicorn workers, manage.py flush_buffer) queue on the busy timeout instead of failing
        #   with "database is locked" when a read transaction would upgrade to a write.
        # - timeout: seconds a writer waits for the lock (a flush chunk holds it for milliseconds).
        options = config.setdefault("OPTIONS", {})
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", 20)
    else:
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a mysql:// or sqlite:/// URL (got engine {engine or 'unknown'!r})"
        )
    return config


def choice(env: environ.Env, key: str, choices: tuple[str, ...], default: str) -> str:
    """An enum-like setting, refused at start-up with a clear message when it is not one of ``choices``."""
    value = env.str(key, default=default)
    normalised = value.upper() if choices == LOG_LEVELS else value.lower()
    if normalised not in choices:
        raise ImproperlyConfigured(f"{key}={value!r} is not one of: {', '.join(choices)}")
    return normalised


def positive_int(env: environ.Env, key: str, default: int) -> int:
    """An integer setting that must be at least 1."""
    try:
        value = env.int(key, default=default)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{key} must be an integer: {exc}") from exc
    if value < 1:
        raise ImproperlyConfigured(f"{key} must be at least 1 (got {value})")
    return value
