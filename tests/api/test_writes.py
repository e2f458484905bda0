"""POST sessions/batch, tasks/batch and flush: the contract's cases (docs/api.md §1-§2)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.factories import session_record, task_record
from tests.processes import free_port
from translation.models import Session, Task

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS_URL = "/api/v1/translation/sessions/batch"
TASKS_URL = "/api/v1/translation/tasks/batch"
FLUSH_URL = "/api/v1/translation/flush"


def post(client, url, body):
    return client.post(url, body, format="json")


def flush(client) -> dict:
    response = client.post(FLUSH_URL)
    assert response.status_code == 200, response.content
    return response.json()


def error_fields(response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


# --- acceptance --------------------------------------------------------------------------


def test_session_batch_is_accepted_with_202_count_and_timestamp(api_client, write_buffer):
    before = dt.datetime.now(dt.UTC)

    response = post(api_client, SESSIONS_URL, {"sessions": [session_record(), session_record()]})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted"
    assert body["count"] == 2
    assert dt.datetime.fromisoformat(body["timestamp"]) >= before.replace(microsecond=0)


def test_accepted_records_are_buffered_not_yet_stored(api_client, write_buffer):
    response = post(api_client, SESSIONS_URL, {"sessions": [session_record("s-1")]})

    assert response.status_code == 202
    assert write_buffer.counts()["translation_sessions"] == 1
    assert not Session.objects.filter(session_id="s-1").exists()


def test_flush_stores_every_field_exactly_as_sent(api_client, write_buffer):
    session = session_record("s-1", filename="  Spaces kept .xlsx ", game_info={"nested": {"a": [1, 2]}})
    task = task_record(
        "s-1",
        "t-1",
        source_text="Привет 🌍",
        target_text="Hallo",
        status="completed",
        confidence=0.98765,
        retry_count=2,
        start_time="2025-09-30T10:15:30Z",
        end_time="2025-09-30T10:15:31.250+02:00",
        duration_ms=1250,
    )
    assert post(api_client, SESSIONS_URL, {"sessions": [session]}).status_code == 202
    assert post(api_client, TASKS_URL, {"tasks": [task]}).status_code == 202

    result = flush(api_client)

    assert result["status"] == "flushed"
    assert (result["sessions_written"], result["tasks_written"]) == (1, 1)
    assert isinstance(result["duration_ms"], int)
    stored = Session.objects.get(session_id="s-1")
    assert stored.filename == "  Spaces kept .xlsx "
    assert stored.game_info == {"nested": {"a": [1, 2]}}
    stored_task = Task.objects.get(task_id="t-1")
    assert stored_task.source_text == "Привет 🌍"
    assert stored_task.confidence == Decimal("0.9877")
    assert stored_task.start_time == dt.datetime(2025, 9, 30, 10, 15, 30, tzinfo=dt.UTC)
    assert stored_task.end_time == dt.datetime(2025, 9, 30, 8, 15, 31, 250000, tzinfo=dt.UTC)
    assert (stored_task.retry_count, stored_task.duration_ms) == (2, 1250)
    assert write_buffer.counts() == {"translation_sessions": 0, "translation_tasks": 0, "audit_logs": 0}


def test_omitted_optional_fields_take_their_defaults(api_client, write_buffer):
    minimal = {
        k: v
        for k, v in session_record("s-1").items()
        if k in ("session_id", "filename", "file_path", "status", "llm_provider")
    }
    assert post(api_client, SESSIONS_URL, {"sessions": [minimal]}).status_code == 202

    flush(api_client)

    stored = Session.objects.get(session_id="s-1")
    assert (stored.total_tasks, stored.completed_tasks, stored.game_info, stored.metadata) == (0, 0, {}, {})


def test_updated_at_is_the_acceptance_time_and_created_at_the_first_write(api_client, write_buffer):
    before = dt.datetime.now(dt.UTC)
    post(api_client, SESSIONS_URL, {"sessions": [session_record("s-1", status="pending")]})
    flush(api_client)
    first = Session.objects.get(session_id="s-1")

    post(api_client, SESSIONS_URL, {"sessions": [session_record("s-1", status="processing")]})
    accepted = dt.datetime.now(dt.UTC)
    flush(api_client)
    second = Session.objects.get(session_id="s-1")

    assert before - dt.timedelta(seconds=1) <= first.created_at <= accepted
    assert second.created_at == first.created_at
    assert first.updated_at < second.updated_at <= accepted + dt.timedelta(seconds=1)
    assert second.status == "processing"


def test_same_id_twice_in_one_batch_the_later_record_wins(api_client, write_buffer):
    batch = {
        "sessions": [
            session_record("s-1", filename="first.xlsx"),
            session_record("s-1", filename="second.xlsx"),
        ]
    }

    assert post(api_client, SESSIONS_URL, batch).status_code == 202
    flush(api_client)

    assert Session.objects.get(session_id="s-1").filename == "second.xlsx"


def test_sending_the_same_batch_twice_leaves_the_same_state(api_client, write_buffer):
    batch = {"sessions": [session_record(f"s-{i}", total_tasks=i) for i in range(5)]}
    fields = ["session_id", "filename", "status", "total_tasks", "game_info", "created_at"]

    post(api_client, SESSIONS_URL, batch)
    flush(api_client)
    once = list(Session.objects.order_by("session_id").values(*fields))
    post(api_client, SESSIONS_URL, batch)
    flush(api_client)
    twice = list(Session.objects.order_by("session_id").values(*fields))

    assert once == twice


def test_body_without_content_type_is_read_as_json(api_client, write_buffer):
    import orjson

    response = api_client.generic(
        "POST", SESSIONS_URL, orjson.dumps({"sessions": [session_record()]}), content_type=""
    )

    assert response.status_code == 202


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]", b'"a string"', b"null"])
def test_body_that_is_empty_not_json_or_not_an_object_is_400_malformed_json(api_client, write_buffer, body):
    response = api_client.generic("POST", SESSIONS_URL, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error_code"] == "MALFORMED_JSON"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"filename": 123}, "filename"),
        ({"total_tasks": "10"}, "total_tasks"),
        ({"total_tasks": 1.5}, "total_tasks"),
        ({"total_tasks": -1}, "total_tasks"),
        ({"total_tasks": True}, "total_tasks"),
        ({"status": "done"}, "status"),
        ({"session_id": ""}, "session_id"),
        ({"session_id": "x" * 37}, "session_id"),
        ({"filename": "x" * 256}, "filename"),
        ({"llm_provider": "x" * 51}, "llm_provider"),
        ({"game_info": [1, 2]}, "game_info"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_session_field_is_422_naming_index_and_field(api_client, write_buffer, overrides, field):
    batch = {"sessions": [session_record(), session_record(**overrides)]}

    response = post(api_client, SESSIONS_URL, batch)

    assert response.status_code == 422
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert f"sessions[1].{field}" in error_fields(response)
    assert write_buffer.counts()["translation_sessions"] == 0  # all or nothing


def test_missing_required_field_is_422(api_client, write_buffer):
    record = session_record()
    del record["llm_provider"]

    response = post(api_client, SESSIONS_URL, {"sessions": [record]})

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "sessions[0].llm_provider", "message": "field required"}]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": "0.5"}, "confidence"),
        ({"row_index": 2.0}, "row_index"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"start_time": 1727691330}, "start_time"),
        ({"end_time": "0001-01-01T00:00:00Z"}, "end_time"),
        ({"source_text": None}, "source_text"),
        ({"source_text": "x" * 100_001}, "source_text"),
        ({"status": "cancelled"}, "status"),
        ({"duration_ms": -5}, "duration_ms"),
        ({"task_id": "x" * 65}, "task_id"),
    ],
)
def test_invalid_task_field_is_422(api_client, write_buffer, overrides, field):
    post(api_client, SESSIONS_URL, {"sessions": [session_record("s-1")]})

    response = post(api_client, TASKS_URL, {"tasks": [task_record("s-1", **overrides)]})

    assert response.status_code == 422
    assert f"tasks[0].{field}" in error_fields(response)


def test_every_invalid_record_is_listed_by_index(api_client, write_buffer):
    post(api_client, SESSIONS_URL, {"sessions": [session_record("s-1")]})
    tasks = [task_record("s-1") for _ in range(6)]
    tasks[1]["status"] = "bogus"
    tasks[4]["row_index"] = -1
    tasks[5]["extra"] = "x"

    response = post(api_client, TASKS_URL, {"tasks": tasks})

    assert response.status_code == 422
    assert error_fields(response) == ["tasks[1].status", "tasks[4].row_index", "tasks[5].extra"]
    assert write_buffer.counts()["translation_tasks"] == 0


def test_empty_source_text_is_allowed(api_client, write_buffer):
    post(api_client, SESSIONS_URL, {"sessions": [session_record("s-1")]})

    assert post(api_client, TASKS_URL, {"tasks": [task_record("s-1", source_text="")]}).status_code == 202


@pytest.mark.parametrize("body", [{"sessions": []}, {}, {"sessions": {"a": 1}}, {"sessions": [], "x": 1}])
def test_batch_that_is_empty_missing_or_not_a_list_is_422(api_client, write_buffer, body):
    response = post(api_client, SESSIONS_URL, body)

    assert response.status_code == 422
    assert response.json()["error_code"] == "VALIDATION_ERROR"


def test_more_than_1000_records_is_422_batch_too_large(api_client, write_buffer):
    response = post(api_client, SESSIONS_URL, {"sessions": [session_record() for _ in range(1001)]})

    assert response.status_code == 422
    assert response.json()["error_code"] == "BATCH_TOO_LARGE"


def test_exactly_1000_records_are_accepted(api_client, write_buffer):
    post(api_client, SESSIONS_URL, {"sessions": [session_record("s-1")]})

    response = post(api_client, TASKS_URL, {"tasks": [task_record("s-1") for _ in range(1000)]})

    assert response.status_code == 202
    assert response.json()["count"] == 1000


def test_body_over_the_size_limit_is_413(api_client, write_buffer, settings):
    settings.REQUEST_MAX_BODY_BYTES = 2000

    response = post(api_client, SESSIONS_URL, {"sessions": [session_record() for _ in range(20)]})

    assert response.status_code == 413
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"


# --- sessions of tasks -------------------------------------------------------------------------


def test_tasks_naming_an_unknown_session_are_422_session_not_found_with_indexes(api_client, write_buffer):
    post(api_client, SESSIONS_URL, {"sessions": [session_record("s-1")]})
    tasks = [task_record("s-1"), task_record("nope"), task_record("s-1"), task_record("nope")]

    response = post(api_client, TASKS_URL, {"tasks": tasks})

    assert response.status_code == 422
    assert response.json()["error_code"] == "SESSION_NOT_FOUND"
    assert error_fields(response) == ["tasks[1].session_id", "tasks[3].session_id"]
    assert write_buffer.counts()["translation_tasks"] == 0


def test_tasks_of_a_buffered_only_session_are_accepted(api_client, write_buffer):
    post(api_client, SESSIONS_URL, {"sessions": [session_record("s-1")]})

    assert post(api_client, TASKS_URL, {"tasks": [task_record("s-1")]}).status_code == 202


def test_tasks_of_a_stored_session_are_accepted(api_client, write_buffer):
    post(api_client, SESSIONS_URL, {"sessions": [session_record("s-1")]})
    flush(api_client)
    assert write_buffer.get("translation_sessions", "s-1") is None

    assert post(api_client, TASKS_URL, {"tasks": [task_record("s-1")]}).status_code == 202


# --- back-pressure and outages -------------------------------------------------------------------


def test_buffer_above_capacity_answers_503_buffer_full_with_retry_after(api_client, write_buffer, settings):
    settings.BUFFER_CAPACITY = 5
    assert (
        post(api_client, SESSIONS_URL, {"sessions": [session_record() for _ in range(4)]}).status_code == 202
    )

    response = post(api_client, SESSIONS_URL, {"sessions": [session_record() for _ in range(2)]})

    assert response.status_code == 503
    assert response.json()["error_code"] == "BUFFER_FULL"
    assert int(response["Retry-After"]) > 0
    assert write_buffer.counts()["translation_sessions"] == 4


def test_redis_unreachable_answers_503_storage_unavailable(api_client, write_buffer, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = post(api_client, SESSIONS_URL, {"sessions": [session_record()]})

    assert response.status_code == 503
    body = response.json()
    assert body["error_code"] == "STORAGE_UNAVAILABLE"
    assert "Redis" in body["detail"]
    assert response["Retry-After"]


def test_flush_with_redis_unreachable_is_503_flush_failed(api_client, write_buffer, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = api_client.post(FLUSH_URL)

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["error_code"]) == ("error", "FLUSH_FAILED")
