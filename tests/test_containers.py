"""The Dockerfile and docker-compose.yml stay consistent with the project (no engine runs here)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.processes import ROOT


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_services_with_health_checks_and_ordering():
    services = _compose()["services"]

    assert {"mysql", "redis", "web", "worker", "beat"} <= set(services)
    assert services["mysql"]["image"].startswith("mysql:8")
    for name in ("mysql", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["mysql"]["condition"] == "service_healthy"


def test_compose_redis_keeps_acknowledged_writes_across_restarts():
    command = _compose()["services"]["redis"]["command"]

    assert command[command.index("--appendonly") + 1] == "yes"


def test_compose_commands_name_modules_that_exist():
    services = _compose()["services"]

    assert "persistence_site" in services["worker"]["command"]
    assert (ROOT / "persistence_site" / "celery.py").exists()


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose not installed")
def test_compose_file_validates():
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env={"SECRET_KEY": "x" * 50, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr


def test_dockerfile_runs_gunicorn_as_a_non_root_user_with_a_health_check():
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, re.M)
    assert re.search(r"^USER app$", dockerfile, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*?/health", dockerfile, re.M)
    cmd = re.search(r"^CMD \[(.*)\]$", dockerfile, re.M).group(1)
    assert '"gunicorn"' in cmd
    config = re.search(r'"-c", "([^"]+)"', cmd).group(1)
    assert (ROOT / config).exists()
    assert "requirements/prod.txt" in dockerfile
