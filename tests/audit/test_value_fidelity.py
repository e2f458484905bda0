"""Property test: every audit event the validation accepts (202) is stored and answered back exactly,
on every search backend, whatever its values at the edges of docs/api.md §0 "Values" and §9 — ids of
URL-special and 4-byte characters at their maximum length, the oldest and newest timestamps with any
offset, a 10,000-character message, the deepest and largest ``details`` — and none becomes a dead
letter. Strategies from tests/api/value_strategies.py, independent of audit.validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from storage_backends.models import DeadLetter
from tests.api.value_strategies import free_objects, ids, stamps, texts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BATCH = "/api/v1/audit/logs/batch"
LOGS = "/api/v1/audit/logs"
FLUSH = "/api/v1/translation/flush"


def _length(name: str) -> int:
    length = AuditEvent._meta.get_field(name).max_length
    assert length is not None
    return length


@st.composite
def events(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """An event as sent, and the timestamp it must be answered with."""
    stamp = draw(stamps())
    event = {
        "event_id": draw(ids(_length("event_id"))),
        "timestamp": stamp.text,
        "actor_id": draw(ids(_length("actor_id"))),
        "actor_type": draw(st.sampled_from(["user", "api_key", "service", "system"])),
        "action": draw(st.sampled_from(["session.delete", "a", "x" * _length("action"), "a-b_c:d.e"])),
        "resource_type": draw(st.none() | ids(_length("resource_type"))),
        "resource_id": draw(st.none() | ids(_length("resource_id"))),
        "outcome": draw(st.sampled_from(["success", "failure"])),
        "message": draw(texts(0, 10_000)),
        "ip": draw(st.none() | texts(0, _length("ip"))),
        "user_agent": draw(st.none() | texts(0, _length("user_agent"))),
        "request_id": draw(st.none() | texts(0, _length("request_id"))),
        "details": draw(free_objects().map(lambda value: value or {})),
    }
    return event, stamp.answer()


@settings(
    max_examples=25,
    derandomize=True,  # the same examples in every CI run
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(batch=st.lists(events(), min_size=1, max_size=3, unique_by=lambda pair: pair[0]["event_id"]))
def test_every_accepted_event_is_stored_and_answered_exactly(api_client, audit_store, write_buffer, batch):
    # given: an empty store and buffer (examples share them, and the store keeps first versions)
    audit_store.clear()
    write_buffer.clear()

    accepted = api_client.post(BATCH, {"logs": [event for event, _ in batch]}, format="json")
    flushed = api_client.post(FLUSH)

    assert accepted.status_code == 202, accepted.content
    assert flushed.status_code == 200, flushed.content
    assert DeadLetter.objects.count() == 0
    for event, answered_at in batch:
        page = api_client.get(LOGS, {"actor_id": event["actor_id"], "page_size": 100})
        assert page.status_code == 200, page.content
        found = [item for item in page.json()["items"] if item["event_id"] == event["event_id"]]
        assert found == [{**event, "timestamp": answered_at}]
