"""Structured logs: one JSON object per line with the request id and the access-log fields."""

from __future__ import annotations

import json
import logging

from core.logging_setup import JsonFormatter, RequestContextFilter, request_id_var


def _format(record: logging.LogRecord) -> dict:
    RequestContextFilter().filter(record)
    line = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s").format(record)
    assert "\n" not in line
    return json.loads(line)


def test_json_line_has_timestamp_level_logger_message_and_request_id():
    token = request_id_var.set("req-42")
    try:
        record = logging.LogRecord(
            "persistence.access", logging.INFO, __file__, 1, "GET /health 200", None, None
        )
        record.status = 200
        record.duration_ms = 1.5
        body = _format(record)
    finally:
        request_id_var.reset(token)

    assert body["level"] == "INFO"
    assert body["logger"] == "persistence.access"
    assert body["message"] == "GET /health 200"
    assert body["request_id"] == "req-42"
    assert body["status"] == 200 and body["duration_ms"] == 1.5
    assert body["timestamp"]


def test_access_log_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="persistence.access"):
        client.get("/api/v1/unknown", headers={"X-Request-ID": "trace-1"})

    records = [r for r in caplog.records if r.name == "persistence.access"]
    assert len(records) == 1
    record = records[0]
    assert (record.method, record.path, record.status) == ("GET", "/api/v1/unknown", 404)
    assert record.duration_ms >= 0
    assert _format(record)["request_id"] == "trace-1"
