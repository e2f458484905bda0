"""Configuration: URL forms, YAML + environment precedence, enum checks, production refusal."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from persistence_site.config import LOG_FORMATS, choice, database_config, load_env, positive_int
from tests.processes import ROOT

STRONG_KEY = "k3y-" + "x7Qp2LmZ9vR4tW8yB1nC6dF0gH5jK3sA" * 2


def test_mysql_url_gives_mysql_engine_with_utf8mb4_and_strict_mode():
    env = load_env({"DATABASE_URL": "mysql://app:s3cret@db.internal:3307/persistence"})

    config = database_config(env)

    assert config["ENGINE"] == "django.db.backends.mysql"
    assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"]) == (
        "app",
        "s3cret",
        "db.internal",
        3307,
    )
    assert config["NAME"] == "persistence"
    assert config["OPTIONS"]["charset"] == "utf8mb4"
    assert "STRICT_TRANS_TABLES" in config["OPTIONS"]["init_command"]


def test_sqlite_url_gives_sqlite_engine_and_absolute_path(tmp_path):
    path = tmp_path / "sub" / "db.sqlite3"
    env = load_env({"DATABASE_URL": f"sqlite:///{path}"})

    config = database_config(env)

    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(path)
    assert path.parent.is_dir()


def test_sqlite_connections_are_durable_and_take_the_write_lock_at_begin(tmp_path):
    """The embedded buffer lives in this file: a 202 must be fsynced, and concurrent writers queue."""
    config = database_config(load_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}))

    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert "synchronous=FULL" in config["OPTIONS"]["init_command"]
    assert config["OPTIONS"]["timeout"] >= 5


def test_mysql_without_redis_url_is_refused_at_start_naming_redis_url():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "persistence_site.settings.local",
            "DATABASE_URL": "mysql://root@127.0.0.1:3306/persistence",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "REDIS_URL must be set" in result.stderr


def test_no_database_url_means_embedded_sqlite():
    config = database_config(load_env({}))

    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"].endswith("persistence.sqlite3")


@pytest.mark.parametrize("url", ["postgres://u@h/db", "not a url"])
def test_unsupported_database_url_is_refused_with_the_setting_named(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        database_config(load_env({"DATABASE_URL": url}))


def test_yaml_file_supplies_values_and_environment_wins(tmp_path):
    config_file = tmp_path / "persistence.yaml"
    config_file.write_text(
        "BUFFER_FLUSH_SIZE: 500\nbuffer_flush_interval: 5\nALLOWED_HOSTS: [a.example, b.example]\nDEBUG: true\n"
    )
    env = load_env({"PERSISTENCE_CONFIG": str(config_file), "BUFFER_FLUSH_INTERVAL": "7"})

    assert env.int("BUFFER_FLUSH_SIZE") == 500
    assert env.int("BUFFER_FLUSH_INTERVAL") == 7
    assert env.list("ALLOWED_HOSTS") == ["a.example", "b.example"]
    assert env.bool("DEBUG") is True


def test_yaml_file_that_is_not_a_mapping_is_refused(tmp_path):
    config_file = tmp_path / "bad.yaml"
    config_file.write_text("- just\n- a list\n")

    with pytest.raises(ImproperlyConfigured, match="mapping"):
        load_env({"PERSISTENCE_CONFIG": str(config_file)})


def test_missing_yaml_file_is_refused(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        load_env({"PERSISTENCE_CONFIG": str(tmp_path / "absent.yaml")})


def test_enum_setting_outside_its_choices_is_refused():
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT='xml' is not one of: json, console"):
        choice(load_env({"LOG_FORMAT": "xml"}), "LOG_FORMAT", LOG_FORMATS, "json")


def test_non_positive_integer_setting_is_refused():
    with pytest.raises(ImproperlyConfigured, match="BUFFER_CAPACITY must be at least 1"):
        positive_int(load_env({"BUFFER_CAPACITY": "0"}), "BUFFER_CAPACITY", 10)


def _production(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.production",
        "DATABASE_URL": "mysql://root@127.0.0.1:3306/persistence",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "ALLOWED_HOSTS": "persistence.example.com",
        "SECRET_KEY": STRONG_KEY,
    }
    base.update(env)
    base = {k: v for k, v in base.items() if v is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *(args or ("check",))],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "django-insecure-" + "a1b2c3d4e5" * 5}, "SECRET_KEY is insecure"),
        ({"SECRET_KEY": "short-but-random-Q2w"}, "SECRET_KEY is insecure"),
        ({"DEBUG": "true"}, "DEBUG must be off"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({"API_AUTH_ENABLED": "false"}, "API_AUTH_ENABLED"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"SECURE_COOKIES": "false"}, "SECURE_COOKIES=false needs SECURE_SSL_REDIRECT=false"),
    ],
)
def test_production_refuses_to_start_with_unsafe_values(env, message):
    result = _production(env)

    assert result.returncode != 0
    assert message in result.stderr


def test_production_passes_the_deploy_check_with_safe_values(tmp_path):
    env = {"STATIC_ROOT": str(tmp_path / "static")}
    assert _production(env, "collectstatic", "--noinput", "-v0").returncode == 0

    result = _production(env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_without_tls_sends_cookies_the_admin_can_use_over_http():
    code = "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)"
    plain = _production({"SECURE_COOKIES": "false", "SECURE_SSL_REDIRECT": "false"}, "shell", "-c", code)
    default = _production({}, "shell", "-c", code)

    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[-1] == "False False"
    assert default.stdout.splitlines()[-1] == "True True"


@pytest.mark.parametrize(
    "module", ["persistence_site.wsgi", "persistence_site.asgi", "persistence_site.celery"]
)
def test_server_entry_points_default_to_the_production_settings(module):
    # given: no DJANGO_SETTINGS_MODULE and no SECRET_KEY, as on a server someone forgot to configure
    code = f"import {module}; import django.conf; django.conf.settings.SECRET_KEY"
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "sqlite:////tmp/never-used.sqlite3"}

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    # then: the production settings refuse to start (the local ones would start, insecurely)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_manage_py_still_defaults_to_the_local_settings():
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "sqlite:////tmp/never-used.sqlite3"}

    result = subprocess.run(
        [sys.executable, "manage.py", "diffsettings", "--all"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "DEBUG = True" in result.stdout


def test_deploy_check_fails_until_static_files_are_collected(tmp_path):
    # given: a production configuration whose STATIC_ROOT was never filled
    env = {"STATIC_ROOT": str(tmp_path / "static")}

    before = _production(env, "check", "--deploy")
    assert _production(env, "collectstatic", "--noinput", "-v0").returncode == 0
    after = _production(env, "check", "--deploy")

    assert before.returncode != 0
    assert "system.E001" in before.stderr and "collectstatic" in before.stderr
    assert "system.E001" not in after.stderr
    assert after.returncode == 0, after.stderr
