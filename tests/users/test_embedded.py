"""The embedded mode (SQLite, no Redis): user sessions in the table, users cached in-process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT

SCRIPT = """
import django, json
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from rest_framework.test import APIClient
from storage_backends.user_sessions import user_session_store
c = APIClient()
user = c.post("/api/v1/users", {"username": "ada"}, format="json").json()
s = c.post(f"/api/v1/users/{user['user_id']}/sessions", {}, format="json").json()
ok = c.post("/api/v1/users/sessions/validate", {"token": s["token"]}, format="json").status_code
c.get(f"/api/v1/users/{user['user_id']}")
c.patch(f"/api/v1/users/{user['user_id']}", {"display_name": "Ada"}, format="json")
name = c.get(f"/api/v1/users/{user['user_id']}").json()["display_name"]
print(json.dumps([type(user_session_store()).__name__, ok, name]))
"""


@pytest.mark.integration
def test_embedded_mode_serves_users_and_sessions_without_redis(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        "REDIS_URL": "",
        "USER_SESSIONS_REDIS_URL": "",
        "API_AUTH_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == '["DatabaseUserSessions", 200, "Ada"]'
