"""The audit suite on SQLite with the embedded buffer (no REDIS_URL), as its own pytest process: the
database is chosen when Django starts, so it cannot be switched inside this one. The same cases
then run on FTS5 (trigram) instead of MariaDB's FULLTEXT. The OpenSearch plugin's own module and its
deep (25,000-event) cases are left out here: they do not touch the database or the buffer beyond
what its API cases, which do run here, cover, and the main run has them all."""

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
    reason="this run is on SQLite already: the audit modules run here directly",
)
def test_the_audit_suite_passes_on_sqlite_with_the_embedded_buffer(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        "REDIS_URL": "",  # the embedded buffer
        "CACHE_URL": "",
        "USER_SESSIONS_REDIS_URL": "",
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
    }
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--create-db", "-x"]
    result = subprocess.run(
        [
            *command,
            "tests/audit",
            "--deselect",
            "tests/audit/test_embedded.py",
            "-m",
            "not external",
            "-k",
            "not test_opensearch_plugin and not (test_deep and opensearch)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
