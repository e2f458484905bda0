"""The value-fidelity property (tests/api/test_value_fidelity.py) on SQLite with the embedded
buffer (no REDIS_URL), run as its own pytest process: the database backend is chosen when Django
starts, so it cannot be switched inside this one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.processes import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="this run is on SQLite already: the property module runs here directly",
)
def test_the_value_property_holds_on_sqlite_with_the_embedded_buffer(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        "REDIS_URL": "",  # the embedded buffer
        "CACHE_URL": "",
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
    }
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--create-db", "-x"]
    result = subprocess.run(
        [*command, "tests/api/test_value_fidelity.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
