"""GET /health: 200 when the database and the buffer store answer, 503 when one does not."""

from __future__ import annotations

import httpx
import pytest

from core import __version__
from tests.factories import task_record
from tests.processes import GunicornServer, free_port, service_env

pytestmark = pytest.mark.django_db


def test_health_is_200_with_the_contract_fields(client):
    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["database"] == "healthy"
    assert body["version"] == __version__
    assert isinstance(body["uptime_seconds"], int)
    assert set(body["buffer"]) == {
        "sessions_count",
        "tasks_count",
        "audit_logs_count",
        "total_count",
        "capacity",
        "usage_percent",
        "flush_size",
        "last_flush",
    }


def test_health_is_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["buffer_store"] == "unhealthy"
    assert body["database"] == "healthy"


@pytest.mark.integration
def test_health_is_503_when_the_database_is_unreachable():
    env = service_env(DATABASE_URL=f"mysql://root@127.0.0.1:{free_port()}/nowhere")

    with GunicornServer(env=env, wait_healthy=False) as server:
        response = httpx.get(server.url + "/health", timeout=20)
        # an API call that needs the database answers 503 in the contract's shape, not 500
        tasks = {"tasks": [task_record("only-in-the-database")]}
        api = httpx.post(server.url + "/api/v1/translation/tasks/batch", json=tasks, timeout=20)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["database"] == "unhealthy"
    assert "Traceback" not in response.text
    assert api.status_code == 503
    assert api.json()["error_code"] == "STORAGE_UNAVAILABLE"
    assert api.headers["Retry-After"]
