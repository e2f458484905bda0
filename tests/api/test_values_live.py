"""Ids with URL-special characters through a real HTTP stack (gunicorn, httpx), not only the
Django test client: every accepted id is reachable by its routes (docs/api.md §0 "Ids")."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.factories import session_record, task_record
from tests.processes import GunicornServer, service_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
IDS = ["a?b", "a#b", "100%", "%2F", "a b", "a+b", "a;b", "a\\b", "ü😀", "batch", "cleanup", "..."]


def test_ids_with_url_special_characters_are_reachable_over_http(write_buffer):
    with GunicornServer(env=service_env(API_AUTH_ENABLED="false")) as server:
        api = f"{server.url}/api/v1/translation"
        with httpx.Client(timeout=20) as http:
            sessions = [session_record(i, status="processing") for i in IDS]
            tasks = [task_record(i, i, status="pending") for i in IDS]
            assert http.post(f"{api}/sessions/batch", json={"sessions": sessions}).status_code == 202
            assert http.post(f"{api}/tasks/batch", json={"tasks": tasks}).status_code == 202
            assert http.post(f"{api}/flush").status_code == 200

            for record_id in IDS:
                seg = quote(record_id, safe="")
                assert http.get(f"{api}/sessions/{seg}").json()["session_id"] == record_id
                assert http.get(f"{api}/tasks/{seg}").json()["task_id"] == record_id
                listed = http.get(f"{api}/sessions/{seg}/tasks").json()["items"]
                assert [t["task_id"] for t in listed] == [record_id]
                restored = http.post(f"{api}/recovery/restore/{seg}").json()
                assert [t["task_id"] for t in restored["tasks"]] == [record_id]
                patched = http.patch(f"{api}/sessions/{seg}/status", json={"status": "completed"})
                assert patched.json()["session_id"] == record_id
                assert http.delete(f"{api}/sessions/{seg}").status_code == 200
                assert http.get(f"{api}/sessions/{seg}").status_code == 404
