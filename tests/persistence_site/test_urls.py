"""Unknown URLs: JSON in the contract's shape under /api/, Django's page elsewhere."""

from __future__ import annotations


def test_unknown_api_url_is_json_404(client):
    response = client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    body = response.json()
    assert body["error_code"] == "NOT_FOUND"
    assert body["errors"] == []
    assert "/api/v1/nothing-here" in body["detail"]


def test_request_id_is_taken_from_the_header_and_echoed(client):
    response = client.get("/api/v1/nothing-here", headers={"X-Request-ID": "abc-123"})

    assert response["X-Request-ID"] == "abc-123"


def test_request_id_is_generated_when_missing_or_unsafe(client):
    first = client.get("/api/v1/x")["X-Request-ID"]
    unsafe = client.get("/api/v1/x", headers={"X-Request-ID": "bad id\nwith newline"})["X-Request-ID"]

    assert len(first) == 32 and first.isalnum()
    assert unsafe != "bad id\nwith newline" and len(unsafe) == 32


def test_body_over_the_limit_is_413(client, settings):
    settings.REQUEST_MAX_BODY_BYTES = 100

    response = client.post("/api/v1/anything", b"x" * 101, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"
