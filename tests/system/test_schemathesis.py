"""Schemathesis over the whole OpenAPI document against the live service (gunicorn, MariaDB,
Redis) with a valid admin key: no 5xx, every answer conforms to the schema (status, content type,
headers, body), and an operation that needs a key refuses a request without one.

The document is the one /api/schema/ serves when that route exists, else the same document
generated in-process by drf-spectacular.
"""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from drf_spectacular.generators import SchemaGenerator

from api_keys.services import api_key_create
from tests.processes import BIN, GunicornServer, service_env

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "ignored_auth",
    ]
)
# Per operation; with three phases this keeps the run around a minute on two cores.
MAX_EXAMPLES = 15
SEED = 20251130


def _schema(server_url: str) -> dict:
    response = httpx.get(server_url + "/api/schema/", headers={"Accept": "application/json"}, timeout=30)
    if response.status_code == 200 and response.headers["content-type"].startswith(
        ("application/json", "application/vnd.oai.openapi+json")
    ):
        return response.json()
    return SchemaGenerator().get_schema(request=None, public=True)


def test_the_live_service_conforms_to_its_openapi_document(write_buffer, tmp_path):
    _, secret = api_key_create(name="schemathesis", scopes="admin")
    env = service_env(API_AUTH_ENABLED="true", THROTTLE_RATE_KEY="off", THROTTLE_RATE_IP="off")
    with GunicornServer(env=env, workers=2) as server:
        schema_path = tmp_path / "openapi.json"
        schema_path.write_text(json.dumps(_schema(server.url), default=str))

        result = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "run",
                str(schema_path),
                "--url",
                server.url,
                "--header",
                f"X-API-Key: {secret}",
                "--checks",
                CHECKS,
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--no-color",
                "--generation-database",
                "none",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
        )

    assert result.returncode == 0, (
        f"{result.stdout[-20000:]}\n{result.stderr[-5000:]}\nserver:\n{server.output[-5000:]}"
    )
    assert "passed" in result.stdout.lower()
