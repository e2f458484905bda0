"""The audit endpoints (docs/api.md §9) end to end on every backend of ``audit_store``: batch writes
through the buffer, search with filters, paging and cursors, export, stats, and their errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid

import pytest
from django.utils import timezone

from storage_backends.search import AUDIT_LOGS
from tests.audit.conftest import T0, event, event_body

pytestmark = pytest.mark.integration

BATCH = "/api/v1/audit/logs/batch"
DEEP: list = [1]
for _ in range(20):
    DEEP = [DEEP]  # with the object itself, 22 levels: over the limit of 20
LOGS = "/api/v1/audit/logs"
EXPORT = "/api/v1/audit/logs/export"
STATS = "/api/v1/audit/stats"
FLUSH = "/api/v1/translation/flush"


def _post(client, body):
    return client.post(BATCH, body, format="json")


def _flush(client):
    response = client.post(FLUSH)
    assert response.status_code == 200, response.content
    return response


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["event_id"] for item in response.json()["items"]]


# --- batch writes ---------------------------------------------------------------------------------


def test_a_batch_is_accepted_flushed_and_found_with_every_field(api_client, audit_store, write_buffer):
    body = event_body(
        event_id="w-1",
        timestamp="2026-03-10T14:00:00+02:00",
        resource_type="session",
        resource_id="s-9",
        message="删除翻译会话 s-9",
        ip="10.0.0.1",
        user_agent="backend/2.0",
        request_id="r-77",
        details={"tasks": 640, "nested": {"ok": True}},
    )

    accepted = _post(api_client, {"logs": [body]})
    _flush(api_client)
    found = api_client.get(LOGS, {"q": "翻译"})

    assert accepted.status_code == 202
    assert accepted.json()["status"] == "accepted" and accepted.json()["count"] == 1
    (item,) = found.json()["items"]
    assert item == {**body, "timestamp": "2026-03-10T12:00:00Z"}


def test_event_id_and_timestamp_are_assigned_at_acceptance(api_client, audit_store, write_buffer):
    body = event_body()
    del body["event_id"], body["timestamp"]
    before = timezone.now()

    assert _post(api_client, {"logs": [body]}).status_code == 202
    _flush(api_client)

    (item,) = api_client.get(LOGS).json()["items"]
    assert uuid.UUID(item["event_id"]).version == 4
    stamp = dt.datetime.fromisoformat(item["timestamp"])
    assert before - dt.timedelta(seconds=1) <= stamp <= timezone.now()
    assert item["timestamp"].endswith("Z")


def test_a_resend_while_buffered_keeps_the_first_version(api_client, audit_store, write_buffer):
    _post(api_client, {"logs": [event_body(event_id="same", message="first")]})
    _post(api_client, {"logs": [event_body(event_id="same", message="second")]})

    buffered = write_buffer.get(AUDIT_LOGS, "same")
    stored = audit_store.backend.read(AUDIT_LOGS, "same")
    _flush(api_client)

    # The buffer kept the first; or the embedded buffer's own flusher had stored the first before
    # the resend arrived (a buffered "second" then proves it: the buffer would have kept "first").
    assert (buffered is not None and buffered["message"] == "first") or stored["message"] == "first"
    assert [i["message"] for i in api_client.get(LOGS).json()["items"]] == ["first"]


def test_a_resend_after_the_flush_keeps_the_stored_version(api_client, audit_store, write_buffer):
    _post(api_client, {"logs": [event_body(event_id="same", message="first")]})
    _flush(api_client)
    _post(api_client, {"logs": [event_body(event_id="same", message="second"), event_body(event_id="new")]})
    _flush(api_client)

    items = api_client.get(LOGS, {"order": "asc"}).json()["items"]
    assert {i["event_id"]: i["message"] for i in items} == {"same": "first", "new": ""}
    assert write_buffer.counts()[AUDIT_LOGS] == 0


def test_the_same_event_id_twice_in_one_batch_keeps_the_first(api_client, audit_store, write_buffer):
    _post(
        api_client,
        {"logs": [event_body(event_id="twin", message="one"), event_body(event_id="twin", message="two")]},
    )
    _flush(api_client)

    assert [i["message"] for i in api_client.get(LOGS).json()["items"]] == ["one"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"actor_id": 7}, "logs[0].actor_id"),
        ({"actor_id": ""}, "logs[0].actor_id"),
        ({"actor_id": "x" * 129}, "logs[0].actor_id"),
        ({"actor_type": "robot"}, "logs[0].actor_type"),
        ({"action": "session.*"}, "logs[0].action"),
        ({"action": "a" * 101}, "logs[0].action"),
        ({"outcome": "ok"}, "logs[0].outcome"),
        ({"event_id": "a/b"}, "logs[0].event_id"),
        ({"event_id": " padded"}, "logs[0].event_id"),
        ({"event_id": "x" * 65}, "logs[0].event_id"),
        ({"timestamp": "2026-03-10T12:00:00"}, "logs[0].timestamp"),
        ({"timestamp": 1700000000}, "logs[0].timestamp"),
        ({"message": "x" * 10_001}, "logs[0].message"),
        ({"message": "nul\x00"}, "logs[0].message"),
        ({"resource_id": "r" * 129}, "logs[0].resource_id"),
        ({"resource_type": "t" * 65}, "logs[0].resource_type"),
        ({"ip": "1" * 65}, "logs[0].ip"),
        ({"user_agent": "u" * 1025}, "logs[0].user_agent"),
        ({"request_id": "r" * 129}, "logs[0].request_id"),
        ({"details": []}, "logs[0].details"),
        ({"details": {"a": DEEP}}, "logs[0].details"),
        ({"unknown": 1}, "logs[0].unknown"),
    ],
)
def test_an_invalid_event_is_a_422_naming_the_field(api_client, audit_store, write_buffer, override, field):
    response = _post(api_client, {"logs": [event_body(), event_body(**override)]})

    assert response.status_code == 422
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert field.replace("logs[0]", "logs[1]") in [e["field"] for e in body["errors"]]
    assert write_buffer.counts()[AUDIT_LOGS] == 0  # all or nothing


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"logs": []}, 422, "VALIDATION_ERROR"),
        ({}, 422, "VALIDATION_ERROR"),
        ({"logs": {}}, 422, "VALIDATION_ERROR"),
        ({"logs": [], "extra": 1}, 422, "VALIDATION_ERROR"),
        ([1, 2], 400, "MALFORMED_JSON"),
    ],
)
def test_a_malformed_batch_is_refused_in_the_contract_shape(api_client, audit_store, body, status, code):
    response = _post(api_client, body)

    assert response.status_code == status
    assert response.json()["error_code"] == code


def test_more_than_1000_events_is_batch_too_large(api_client, audit_store):
    response = _post(api_client, {"logs": [event_body() for _ in range(1001)]})

    assert response.status_code == 422
    assert response.json()["error_code"] == "BATCH_TOO_LARGE"


def test_a_body_that_is_not_json_is_a_400(api_client, audit_store):
    response = api_client.post(BATCH, data=b"{not json", content_type="application/json")
    empty = api_client.post(BATCH, data=b"", content_type="application/json")

    assert response.status_code == 400 and response.json()["error_code"] == "MALFORMED_JSON"
    assert empty.status_code == 400 and empty.json()["error_code"] == "MALFORMED_JSON"


# --- search ---------------------------------------------------------------------------------------


@pytest.fixture
def stored(audit_store):
    rows = [
        event(event_id="a", action="session.delete", message="删除翻译会话", timestamp=T0),
        event(event_id="b", action="session.create", timestamp=T0 + dt.timedelta(days=1)),
        event(event_id="c", action="file.upload", outcome="failure", timestamp=T0 + dt.timedelta(days=2)),
        event(event_id="d", action="session.delete", actor_id="ops", timestamp=T0 + dt.timedelta(days=2)),
    ]
    audit_store.load(rows)
    return audit_store


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["d", "c", "b", "a"]),
        ({"order": "asc"}, ["a", "b", "c", "d"]),
        ({"action": "session.*"}, ["d", "b", "a"]),
        ({"action": "session.delete"}, ["d", "a"]),
        ({"action": "session"}, []),
        ({"outcome": "failure"}, ["c"]),
        ({"actor_id": "ops"}, ["d"]),
        ({"actor_type": "service"}, ["d", "c", "b", "a"]),
        ({"resource_type": "session", "resource_id": "s-1"}, ["d", "c", "b", "a"]),
        ({"from": "2026-03-11"}, ["d", "c", "b"]),
        ({"to": "2026-03-11"}, ["b", "a"]),  # a bare date covers the whole day
        ({"from": "2026-03-10T12:00:01Z", "to": "2026-03-11T12:00:00+00:00"}, ["b"]),
        ({"q": "翻译"}, ["a"]),
        ({"q": "翻译", "action": "file.*"}, []),
    ],
)
def test_the_list_filters(api_client, stored, params, expected):
    assert _ids(api_client.get(LOGS, params)) == expected


def test_a_page_has_the_contract_shape(api_client, stored):
    body = api_client.get(LOGS, {"page_size": 3}).json()

    assert {k: body[k] for k in ("total", "page", "page_size", "total_pages")} == {
        "total": 4,
        "page": 1,
        "page_size": 3,
        "total_pages": 2,
    }
    assert isinstance(body["next_cursor"], str)
    past_the_end = api_client.get(LOGS, {"page": 9}).json()
    assert past_the_end["items"] == [] and past_the_end["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page_size": "101"}, "page_size"),
        ({"page_size": "x"}, "page_size"),
        ({"page": "501", "page_size": "20"}, "page"),  # past 10,000 by offset: use the cursor
        ({"order": "up"}, "order"),
        ({"from": "yesterday"}, "from"),
        ({"to": " 2026-03-10"}, "to"),
        ({"actor_type": "robot"}, "actor_type"),
        ({"outcome": "maybe"}, "outcome"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_a_malformed_query_is_a_400(api_client, stored, params, field):
    response = api_client.get(LOGS, params)

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_QUERY"
    assert field in [e["field"] for e in response.json()["errors"]]


def test_cursor_paging_follows_next_cursor_to_the_end(api_client, stored):
    seen, cursor = [], None
    while True:
        params = {"page_size": 1, "action": "session.*"} | ({"cursor": cursor} if cursor else {})
        body = api_client.get(LOGS, params).json()
        seen += [item["event_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert body["page"] in (1, None)

    assert seen == ["d", "b", "a"]


@pytest.mark.parametrize(
    "change",
    [{"action": "file.*"}, {"order": "asc"}, {"q": "x"}, {"action": "session.*", "outcome": "success"}],
)
def test_a_cursor_used_with_other_filters_or_order_is_refused(api_client, stored, change):
    first = api_client.get(LOGS, {"page_size": 1, "action": "session.*"}).json()

    response = api_client.get(
        LOGS, {"page_size": 1, "action": "session.*", **change, "cursor": first["next_cursor"]}
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_QUERY"


def test_a_tampered_cursor_is_refused(api_client, stored):
    cursor = api_client.get(LOGS, {"page_size": 1}).json()["next_cursor"]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")

    response = api_client.get(LOGS, {"page_size": 1, "cursor": tampered})

    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_QUERY"


# --- export and stats -------------------------------------------------------------------------------


def _body(response) -> bytes:
    assert response.status_code == 200, getattr(response, "content", b"")
    return b"".join(response.streaming_content)


def test_export_ndjson_is_the_default_ascending(api_client, stored):
    response = api_client.get(EXPORT, {"action": "session.*"})

    lines = [json.loads(line) for line in _body(response).splitlines()]
    assert response["Content-Type"] == "application/x-ndjson"
    assert [e["event_id"] for e in lines] == ["a", "b", "d"]
    assert lines[0]["message"] == "删除翻译会话" and lines[0]["timestamp"] == "2026-03-10T12:00:00Z"


def test_export_csv_escapes_and_neutralises_formulas(api_client, audit_store):
    messages = {
        "m1": 'comma, "quote" and\nnewline',
        "m2": '=HYPERLINK("http://x")',
        "m3": "+1",
        "m4": "-2+3",
        "m5": "@SUM(A1)",
        "m6": "\tTAB",
        "m7": "\rCR",
        "m8": "plain 翻译",
    }
    audit_store.load(
        [
            event(event_id=k, message=v, timestamp=T0 + dt.timedelta(seconds=i), details={"k": "=1"})
            for i, (k, v) in enumerate(messages.items())
        ]
    )

    response = api_client.get(EXPORT, {"format": "csv"})
    text = _body(response).decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))

    assert response["Content-Type"].startswith("text/csv")
    assert rows[0][:4] == ["event_id", "timestamp", "actor_id", "actor_type"]
    by_id = {row[0]: row for row in rows[1:]}
    message_at = rows[0].index("message")
    assert by_id["m1"][message_at] == 'comma, "quote" and\nnewline'
    assert by_id["m2"][message_at] == '\'=HYPERLINK("http://x")'
    assert [by_id[k][message_at] for k in ("m3", "m4", "m5", "m6", "m7")] == [
        "'+1",
        "'-2+3",
        "'@SUM(A1)",
        "'\tTAB",
        "'\rCR",
    ]
    assert by_id["m8"][message_at] == "plain 翻译"
    assert by_id["m1"][rows[0].index("details")] == '{"k":"=1"}'
    assert by_id["m1"][rows[0].index("timestamp")] == "2026-03-10T12:00:00Z"


@pytest.mark.parametrize(("params", "field"), [({"format": "xml"}, "format"), ({"from": "bad"}, "from")])
def test_export_refuses_a_malformed_query_before_streaming(api_client, stored, params, field):
    response = api_client.get(EXPORT, params)

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_QUERY"
    assert field in [e["field"] for e in response.json()["errors"]]


def test_stats_endpoint(api_client, stored):
    body = api_client.get(STATS).json()
    filtered = api_client.get(STATS, {"action": "session.*"}).json()

    assert body == {
        "total": 4,
        "by_action": {"session.delete": 2, "file.upload": 1, "session.create": 1},
        "by_outcome": {"success": 3, "failure": 1},
        "by_actor": {"backend-v2": 3, "ops": 1},
        "per_day": [
            {"date": "2026-03-10", "count": 1},
            {"date": "2026-03-11", "count": 1},
            {"date": "2026-03-12", "count": 2},
        ],
    }
    assert filtered["total"] == 3 and "file.upload" not in filtered["by_action"]
    assert api_client.get(STATS, {"from": "nope"}).status_code == 400


# --- scopes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "needs"),
    [("post", BATCH, "write"), ("get", LOGS, "admin"), ("get", EXPORT, "admin"), ("get", STATS, "admin")],
)
def test_each_endpoint_needs_its_scope(
    api_client, audit_store, auth_enabled, make_api_key, method, path, needs
):
    other = "read" if needs == "write" else "read,write"
    call = getattr(api_client, method)
    body = {"logs": [event_body()]} if method == "post" else None

    anonymous = call(path, body, format="json")
    lacking = call(path, body, format="json", HTTP_X_API_KEY=make_api_key(other))
    allowed = call(path, body, format="json", HTTP_X_API_KEY=make_api_key(needs))

    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == "NOT_AUTHENTICATED"
    assert lacking.status_code == 403 and lacking.json()["error_code"] == "PERMISSION_DENIED"
    assert allowed.status_code in (200, 202)
