"""docs/api.md §0 "Values", one rule per test: timestamps, ids, strings, free JSON objects, filters.

A value storage could refuse is a 422 naming the field at validation ("202 is a promise"); a value
accepted is answered as sent, the same before and after the flush. tests/api/test_value_fidelity.py
checks the same rules over generated values.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import orjson
import pytest

from storage_backends.models import DeadLetter
from tests.factories import session_record, task_record
from translation.models import Session, Task
from translation.validation import MAX_JSON_BYTES, MAX_JSON_DEPTH, SessionIn, TaskIn, max_length

pytestmark = pytest.mark.django_db(transaction=True)
BASE = "/api/v1/translation"


def post(client, path: str, body) -> object:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return client.post(BASE + path, raw, content_type="application/json")


def flush(client) -> None:
    response = client.post(BASE + "/flush")
    assert response.status_code == 200, response.content


def body_of(response) -> dict:
    if getattr(response, "streaming", False):
        return orjson.loads(b"".join(response.streaming_content))
    return orjson.loads(response.content)


def refused(response, field: str) -> None:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert field in [e["field"] for e in body["errors"]], body["errors"]


def seg(value: str) -> str:
    return quote(value, safe="")


def nested(depth: int) -> dict:
    """An object ``depth`` levels deep, itself included."""
    value: object = 1
    for _ in range(depth - 1):
        value = {"a": value}
    return {"root": value}


@pytest.fixture
def session_s1(api_client, write_buffer):
    assert post(api_client, "/sessions/batch", {"sessions": [session_record("s-1")]}).status_code == 202
    return "s-1"


# --- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2025-09-30T10:15:30",  # offset-less: once taken as UTC
        "2025-09-30",
        "1700000000",  # epoch string: pydantic's lax mode took it as seconds
        1700000000,
        "2025-09-30T10:15:30+0200",
        "2025-02-30T10:15:30Z",
        "2025-09-30T10:15:30+24:00",
        "9999-12-31T23:59:59-05:00",  # the poison record of issue 11: year 10000 in UTC
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "1000-01-01T00:00:00+00:01",  # year 999 in UTC
        " 2025-09-30T10:15:30Z",
        "10000-01-01T00:00:00Z",
    ],
)
def test_timestamp_without_offset_or_outside_years_1000_9999_in_utc_is_422(api_client, session_s1, value):
    response = post(api_client, "/tasks/batch", {"tasks": [task_record("s-1", start_time=value)]})

    refused(response, "tasks[0].start_time")


@pytest.mark.parametrize(
    ("sent", "answered"),
    [
        ("2025-09-30T10:00:00+05:00", "2025-09-30T05:00:00Z"),
        ("2025-09-30T10:00:00.123-02:30", "2025-09-30T12:30:00.123000Z"),
        ("2025-09-30t10:00:00.1234567z", "2025-09-30T10:00:00.123456Z"),  # beyond microseconds: truncated
        ("0999-12-31T00:01:00-23:59", "1000-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_timestamp_is_answered_in_utc_with_z_the_same_before_and_after_the_flush(
    api_client, session_s1, sent, answered
):
    task = task_record("s-1", "t-1", status="processing", end_time=sent)
    response = post(api_client, "/tasks/batch", {"tasks": [task]})
    assert response.status_code == 202, response.content

    before = body_of(api_client.get(f"{BASE}/tasks/t-1"))["end_time"]
    restored_before = body_of(api_client.post(f"{BASE}/recovery/restore/s-1"))["tasks"][0]["end_time"]
    flush(api_client)
    after = body_of(api_client.get(f"{BASE}/tasks/t-1"))["end_time"]
    restored_after = body_of(api_client.post(f"{BASE}/recovery/restore/s-1"))["tasks"][0]["end_time"]
    listed = body_of(api_client.get(f"{BASE}/tasks", {"session_id": "s-1"}))["items"][0]["end_time"]

    assert before == restored_before == after == restored_after == listed == answered


# --- ids --------------------------------------------------------------------------------------

BAD_IDS = [
    "a/b",
    "/",
    ".",
    "..",
    " a",
    "a ",
    "a\tb",
    "a\nb",
    "a\x7f",
    "a\x85b",
    "\u00a0a",
    "a\u202eb",
    "a\u2066",
]


@pytest.mark.parametrize("value", BAD_IDS)
@pytest.mark.parametrize("field", ["task_id", "session_id", "batch_id"])
def test_task_id_fields_with_slash_controls_dots_or_surrounding_space_are_422(
    api_client, session_s1, field, value
):
    record = {**task_record("s-1"), field: value}

    response = post(api_client, "/tasks/batch", {"tasks": [record]})

    refused(response, f"tasks[0].{field}")


@pytest.mark.parametrize("value", BAD_IDS)
def test_session_id_with_slash_controls_dots_or_surrounding_space_is_422(api_client, write_buffer, value):
    response = post(api_client, "/sessions/batch", {"sessions": [session_record(value)]})

    refused(response, "sessions[0].session_id")


REACHABLE_IDS = [
    "a?b", "a#b", "100%", "%2F", "%20x", "a b", "a+b", "a;b", "a&b=c", "ü", "日本語", "😀", "🏳️‍🌈",
    "batch", "cleanup", "status", "tasks", "...", ".a", "a.", "a\\b", "a\u2028b", "\ufeffa", "'\"<>",
]  # fmt: skip


@pytest.mark.parametrize("record_id", REACHABLE_IDS)
def test_every_accepted_id_is_reachable_through_every_route(api_client, write_buffer, record_id):
    # given: a session and a task with the id, a task in a batch with the id
    session = session_record(record_id, status="processing")
    task = task_record(record_id, record_id, batch_id=record_id, status="pending")
    assert post(api_client, "/sessions/batch", {"sessions": [session]}).status_code == 202
    assert post(api_client, "/tasks/batch", {"tasks": [task]}).status_code == 202
    sid = seg(record_id)

    # then, before the flush (read-your-writes)
    assert body_of(api_client.get(f"{BASE}/sessions/{sid}"))["session_id"] == record_id
    assert body_of(api_client.get(f"{BASE}/tasks/{sid}"))["task_id"] == record_id
    restored = body_of(api_client.post(f"{BASE}/recovery/restore/{sid}"))
    assert [t["task_id"] for t in restored["tasks"]] == [record_id]

    # and after it
    flush(api_client)
    assert body_of(api_client.get(f"{BASE}/sessions/{sid}"))["session_id"] == record_id
    assert body_of(api_client.get(f"{BASE}/tasks/{sid}"))["task_id"] == record_id
    assert [t["task_id"] for t in body_of(api_client.get(f"{BASE}/sessions/{sid}/tasks"))["items"]] == [
        record_id
    ]
    for name in ("session_id", "batch_id"):
        items = body_of(api_client.get(f"{BASE}/tasks", {name: record_id}))["items"]
        assert [t["task_id"] for t in items] == [record_id], name
    restored = body_of(api_client.post(f"{BASE}/recovery/restore/{sid}"))
    assert [t["task_id"] for t in restored["tasks"]] == [record_id]
    patched = api_client.patch(f"{BASE}/sessions/{sid}/status", {"status": "completed"}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["session_id"] == record_id
    deleted = api_client.delete(f"{BASE}/sessions/{sid}")
    assert deleted.status_code == 200, deleted.content
    assert api_client.get(f"{BASE}/sessions/{sid}").status_code == 404


def test_ids_differing_only_in_case_or_a_trailing_character_are_distinct(api_client, write_buffer):
    ids = ["abc", "ABC", "abc.", "ab\u00e7", "abc\u00a0x"]
    sessions = [session_record(i, filename=f"f-{i}") for i in ids]
    assert post(api_client, "/sessions/batch", {"sessions": sessions}).status_code == 202

    flush(api_client)

    assert Session.objects.count() == len(ids)
    for i in ids:
        assert body_of(api_client.get(f"{BASE}/sessions/{seg(i)}"))["filename"] == f"f-{i}"


# --- strings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["filename", "file_path", "llm_provider"])
def test_nul_in_a_session_string_is_422(api_client, write_buffer, field):
    response = post(api_client, "/sessions/batch", {"sessions": [session_record(**{field: "a\x00b"})]})

    refused(response, f"sessions[0].{field}")


@pytest.mark.parametrize(
    "field", ["sheet_name", "column_name", "source_text", "target_text", "context", "error_message"]
)
def test_nul_in_a_task_string_is_422(api_client, session_s1, field):
    response = post(api_client, "/tasks/batch", {"tasks": [task_record("s-1", **{field: "\x00"})]})

    refused(response, f"tasks[0].{field}")


@pytest.mark.parametrize(
    "raw", [b'"\\ud800"', b'"a\\udc00"', b'"\\ud83d"', b'"\xff"', b'"\xed\xa0\x80"', b'"a\nb"']
)
def test_lone_surrogate_invalid_utf8_or_raw_control_in_the_body_is_400_malformed_json(
    api_client, session_s1, raw
):
    body = b'{"sessions": [{"session_id": "s-2", "filename": ' + raw + b"}]}"

    response = post(api_client, "/sessions/batch", body)

    assert response.status_code == 400
    assert response.json()["error_code"] == "MALFORMED_JSON"


@pytest.mark.parametrize("field", ["filename", "file_path", "llm_provider"])
def test_maximum_lengths_count_4_byte_characters_as_one(api_client, write_buffer, field):
    limit = max_length(Session, field)
    at_limit = session_record("s-1", **{field: "😀" * limit})
    over = session_record("s-2", **{field: "𠀀" * (limit + 1)})

    refused(post(api_client, "/sessions/batch", {"sessions": [over]}), f"sessions[0].{field}")
    assert post(api_client, "/sessions/batch", {"sessions": [at_limit]}).status_code == 202
    flush(api_client)

    assert getattr(Session.objects.get(pk="s-1"), field) == "😀" * limit
    assert SessionIn.model_json_schema()["properties"][field]["maxLength"] == limit


def test_limits_come_from_the_models():
    schema = TaskIn.model_json_schema()["properties"]

    assert schema["task_id"]["maxLength"] == Task._meta.get_field("task_id").max_length
    assert schema["sheet_name"]["maxLength"] == Task._meta.get_field("sheet_name").max_length
    assert schema["session_id"]["maxLength"] == Session._meta.get_field("session_id").max_length
    assert schema["row_index"]["maximum"] == 2**31 - 1
    assert schema["duration_ms"]["anyOf"][0]["maximum"] == 2**63 - 1


def test_max_length_ids_of_4_byte_characters_are_stored_and_reachable(api_client, write_buffer):
    sid, tid = "😀" * max_length(Session, "session_id"), "𠀀" * max_length(Task, "task_id")
    assert post(api_client, "/sessions/batch", {"sessions": [session_record(sid)]}).status_code == 202
    assert (
        post(api_client, "/tasks/batch", {"tasks": [task_record(sid, tid, batch_id=tid)]}).status_code == 202
    )

    flush(api_client)

    assert body_of(api_client.get(f"{BASE}/tasks/{seg(tid)}"))["session_id"] == sid
    assert DeadLetter.objects.count() == 0


# --- free JSON objects ------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["game_info", "metadata"])
def test_free_json_nested_deeper_than_the_limit_is_422(api_client, write_buffer, field):
    record = session_record(**{field: nested(MAX_JSON_DEPTH + 1)})

    refused(post(api_client, "/sessions/batch", {"sessions": [record]}), f"sessions[0].{field}")


def test_free_json_at_the_depth_limit_is_stored_as_sent(api_client, write_buffer):
    # given: 20 levels, the object itself being level 1, arrays counting as levels too
    value: object = [1, {"x": None}]
    for _ in range(MAX_JSON_DEPTH - 3):
        value = {"a": value}
    metadata = {"root": value}
    assert (
        post(
            api_client, "/sessions/batch", {"sessions": [session_record("s-1", metadata=metadata)]}
        ).status_code
        == 202
    )

    flush(api_client)

    assert body_of(api_client.get(f"{BASE}/sessions/s-1"))["metadata"] == metadata
    assert DeadLetter.objects.count() == 0


def test_metadata_40_levels_deep_is_422_not_a_dead_letter(api_client, write_buffer):
    # issue 11: it was accepted, then refused by MariaDB's json_valid (limit 32) at flush time
    refused(
        post(api_client, "/sessions/batch", {"sessions": [session_record(metadata=nested(40))]}),
        "sessions[0].metadata",
    )


@pytest.mark.parametrize("depth", [300, 1000])
def test_very_deep_free_json_is_refused_without_recursion(api_client, write_buffer, depth):
    raw = b'{"sessions": [{"session_id": "s", "metadata": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}]}"

    response = post(api_client, "/sessions/batch", raw)

    assert response.status_code == 422
    assert "sessions[0].metadata" in [e["field"] for e in response.json()["errors"]]


def test_a_body_deeper_than_the_parser_allows_is_400(api_client, write_buffer):
    raw = b'{"sessions": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"

    response = post(api_client, "/sessions/batch", raw)

    assert response.status_code == 400
    assert response.json()["error_code"] == "MALFORMED_JSON"


def test_free_json_over_64_kib_serialised_is_422_and_at_it_accepted(api_client, write_buffer):
    overhead = len(b'{"x":""}')
    at_limit = {"x": "😀" * ((MAX_JSON_BYTES - overhead) // 4)}
    over = {"x": "a" * (MAX_JSON_BYTES - overhead + 1)}

    refused(
        post(api_client, "/sessions/batch", {"sessions": [session_record(game_info=over)]}),
        "sessions[0].game_info",
    )
    assert (
        post(
            api_client, "/sessions/batch", {"sessions": [session_record("s-1", game_info=at_limit)]}
        ).status_code
        == 202
    )
    flush(api_client)

    assert Session.objects.get(pk="s-1").game_info == at_limit


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 2**64 - 1, 2**64, 10**30, -(10**30)])
def test_free_json_integers_outside_signed_64_bits_are_422(api_client, write_buffer, number):
    raw = json.dumps({"sessions": [session_record(metadata={"n": [number]})]}).encode()

    refused(post(api_client, "/sessions/batch", raw), "sessions[0].metadata")


@pytest.mark.parametrize("field", ["total_tasks", "duration_ms"])
def test_record_integers_beyond_64_bits_are_422_not_floats(api_client, session_s1, field):
    record = (
        session_record("s-2", total_tasks=2**64)
        if field == "total_tasks"
        else task_record("s-1", duration_ms=2**64)
    )
    kind = "sessions" if field == "total_tasks" else "tasks"

    refused(post(api_client, f"/{kind}/batch", {kind: [record]}), f"{kind}[0].{field}")


@pytest.mark.parametrize("key", ["k\x00", "k"])
def test_nul_in_free_json_keys_or_values_is_422(api_client, write_buffer, key):
    value = {key: "v"} if key != "k" else {"k": ["v\x00"]}

    refused(
        post(api_client, "/sessions/batch", {"sessions": [session_record(game_info=value)]}),
        "sessions[0].game_info",
    )


def test_free_json_numbers_are_answered_as_sent(api_client, write_buffer):
    numbers = {"ints": [2**63 - 1, -(2**63), 0, 1], "floats": [1e308, -0.0, 5e-324, 0.1, 1.0, -1.5e-300]}
    assert (
        post(
            api_client, "/sessions/batch", {"sessions": [session_record("s-1", metadata=numbers)]}
        ).status_code
        == 202
    )
    before = api_client.get(f"{BASE}/sessions/s-1").content

    flush(api_client)
    after = api_client.get(f"{BASE}/sessions/s-1").content

    for raw in (before, after):
        metadata = orjson.loads(raw)["metadata"]
        assert metadata == numbers
        assert [type(v) for v in metadata["floats"]] == [float] * 6
        assert str(metadata["floats"][1]) == "-0.0"
    assert DeadLetter.objects.count() == 0


def test_confidence_is_rounded_to_4_decimals_and_never_negative_zero(api_client, session_s1):
    tasks = [task_record("s-1", "t-1", confidence=-0.0), task_record("s-1", "t-2", confidence=0.99995)]
    assert post(api_client, "/tasks/batch", {"tasks": tasks}).status_code == 202
    before = [api_client.get(f"{BASE}/tasks/{t}").content for t in ("t-1", "t-2")]

    flush(api_client)
    after = [api_client.get(f"{BASE}/tasks/{t}").content for t in ("t-1", "t-2")]

    assert [orjson.loads(b)["confidence"] for b in before] == [orjson.loads(b)["confidence"] for b in after]
    assert b'"confidence":0.0' in before[0] and b'"confidence":0.0' in after[0]


# --- filters ----------------------------------------------------------------------------------


@pytest.fixture
def stored_for_filters(api_client, write_buffer):
    sessions = [session_record("s-1", llm_provider="openai"), session_record("s-2", llm_provider=" openai")]
    tasks = [
        task_record("s-1", "t-1", sheet_name="Sheet1"),
        task_record("s-1", "t-2", sheet_name=" Sheet1"),
        task_record("s-1", "t-3", sheet_name="sheet1"),
        task_record("s-1", "t-4", sheet_name="Sheet1 "),
    ]
    assert post(api_client, "/sessions/batch", {"sessions": sessions}).status_code == 202
    assert post(api_client, "/tasks/batch", {"tasks": tasks}).status_code == 202
    flush(api_client)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("openai", ["s-1"]), (" openai", ["s-2"]), ("openai ", []), ("OpenAI", []), (" ", [])],
)
def test_llm_provider_filter_is_exact_not_trimmed(api_client, stored_for_filters, value, expected):
    items = body_of(api_client.get(f"{BASE}/sessions", {"llm_provider": value}))["items"]

    assert [s["session_id"] for s in items] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Sheet1", ["t-1"]), (" Sheet1", ["t-2"]), ("sheet1", ["t-3"]), ("Sheet1 ", ["t-4"])],
)
def test_sheet_name_filter_is_exact_not_trimmed(api_client, stored_for_filters, value, expected):
    items = body_of(api_client.get(f"{BASE}/sessions/s-1/tasks", {"sheet_name": value}))["items"]

    assert [t["task_id"] for t in items] == expected


def test_llm_provider_with_an_encoded_space_does_not_find_the_trimmed_value(api_client, stored_for_filters):
    items = body_of(api_client.get(f"{BASE}/sessions?llm_provider=openai%20"))["items"]

    assert items == []


@pytest.mark.parametrize("name", ["session_id", "batch_id"])
def test_id_filters_are_not_trimmed(api_client, stored_for_filters, name):
    value = " s-1" if name == "session_id" else "batch-1 "

    assert body_of(api_client.get(f"{BASE}/tasks", {name: value}))["items"] == []


@pytest.mark.parametrize("name", ["from_date", "to_date"])
def test_date_filter_with_surrounding_whitespace_is_400(api_client, write_buffer, name):
    response = api_client.get(f"{BASE}/sessions", {name: " 2026-01-31"})

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_QUERY"
