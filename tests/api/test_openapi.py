"""The OpenAPI document (docs/api.md §6): served, valid, complete, and its UIs work without a CDN."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

#: Every operation of docs/api.md, as (method, path template).
CONTRACT_OPERATIONS = {
    ("post", "/api/v1/translation/sessions/batch"),
    ("post", "/api/v1/translation/tasks/batch"),
    ("post", "/api/v1/translation/flush"),
    ("get", "/api/v1/translation/sessions"),
    ("get", "/api/v1/translation/sessions/{session_id}"),
    ("get", "/api/v1/translation/sessions/{session_id}/tasks"),
    ("get", "/api/v1/translation/tasks/{task_id}"),
    ("get", "/api/v1/translation/tasks"),
    ("get", "/api/v1/translation/stats"),
    ("get", "/api/v1/translation/recovery/incomplete-sessions"),
    ("post", "/api/v1/translation/recovery/restore/{session_id}"),
    ("get", "/api/v1/translation/recovery/status"),
    ("delete", "/api/v1/translation/sessions/{session_id}"),
    ("patch", "/api/v1/translation/sessions/{session_id}/status"),
    ("post", "/api/v1/translation/sessions/cleanup"),
    ("get", "/api/v1/system/metrics"),
    ("get", "/api/v1/system/config"),
    ("post", "/api/v1/audit/logs/batch"),
    ("get", "/api/v1/audit/logs"),
    ("get", "/api/v1/audit/logs/export"),
    ("get", "/api/v1/audit/stats"),
}


@pytest.fixture(scope="module")
def document(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_the_document_is_valid_openapi(document):
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_contract_operation_is_documented_with_its_answers(document):
    documented = {(m, p) for p, item in document["paths"].items() for m in item if m != "parameters"}

    assert documented >= CONTRACT_OPERATIONS, sorted(CONTRACT_OPERATIONS - documented)
    for method, path in CONTRACT_OPERATIONS:
        operation = document["paths"][path][method]
        codes = set(operation["responses"])
        assert codes & {"200", "202"}, (method, path)
        assert {"401", "403"} <= codes, (method, path)
        assert operation.get("summary"), (method, path)


def test_list_operations_document_their_query_parameters(document):
    def names(path: str) -> set[str]:
        return {p["name"] for p in document["paths"][path]["get"].get("parameters", []) if p["in"] == "query"}

    assert names("/api/v1/translation/sessions") == {
        "status", "llm_provider", "from_date", "to_date", "sort_by", "order", "page", "page_size",
    }  # fmt: skip
    assert names("/api/v1/translation/tasks") == {
        "session_id", "status", "batch_id", "from_date", "to_date", "page", "page_size",
    }  # fmt: skip
    assert names("/api/v1/translation/sessions/{session_id}/tasks") == {
        "status",
        "sheet_name",
        "page",
        "page_size",
    }
    assert "400" in document["paths"]["/api/v1/translation/sessions"]["get"]["responses"]


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_documentation_pages_load_their_assets_locally(client, path):
    page = client.get(path)

    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets, "the page should load its scripts from this service"
    assert "cdn.jsdelivr.net" not in html
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_the_documentation_is_public_when_keys_are_required(client, settings, path):
    settings.API_AUTH_ENABLED = True

    assert client.get(path).status_code == 200
    assert client.get("/api/v1/translation/stats").status_code == 401  # the API itself is not


def test_health_is_in_the_document_without_a_key(document):
    operation = document["paths"]["/health"]["get"]

    assert {"200", "503"} <= set(operation["responses"])
    assert operation.get("security", []) in ([], [{}])  # no key (the document has no global security)
    assert "security" not in document
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema  # the body's shape is documented


def test_health_answers_json_whatever_the_accept_header(client):
    response = client.get("/health", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


@pytest.mark.parametrize("path", ["/docs", "/docs/"])
def test_docs_redirects_to_the_swagger_ui(client, path):
    response = client.get(path)

    assert response.status_code in (301, 302)
    assert response["Location"] == "/api/docs/"


def test_the_routes_named_like_ids_keep_their_operations(document):
    assert set(document["paths"]["/api/v1/translation/sessions/batch"]) == {"post"}
    assert set(document["paths"]["/api/v1/translation/tasks/batch"]) == {"post"}
    assert set(document["paths"]["/api/v1/translation/sessions/cleanup"]) == {"post"}
