"""Paths of the monitoring assets and the promtool binary (Debian package ``prometheus``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "monitoring" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "monitoring" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "persistence-dashboard.json"
TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool is not installed (apt-get install prometheus); the YAML structure tests still run"
        )
    return path
