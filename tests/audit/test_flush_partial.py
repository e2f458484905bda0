"""The flusher and a bulk write that stores some events and refuses others (``PartialWriteError``):
permanent refusals become dead letters, transient ones stay buffered with their failures counted,
the rest leave the buffer. No SQL database answers a bulk write that way, so the backend here is
the SQL one with the refusals added (the only fault this suite simulates)."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from storage_backends.flush import flush_all
from storage_backends.models import DeadLetter
from storage_backends.search import AUDIT_LOGS, PartialWriteError
from storage_backends.search_sql import SQLAuditSearch
from tests.storage_backends.test_buffer_keep_first import audit_record

pytestmark = pytest.mark.django_db(transaction=True)


class PartialAuditSearch(SQLAuditSearch):
    """Stores every event but those whose message is ``refuse`` (for good) or ``later`` (for now,
    until ``accept_later`` is set)."""

    accept_later = False

    def write(self, collection: str, records: Any, *, sizes: Any = None) -> int:
        permanent = {r["event_id"]: "mapper_parsing_exception" for r in records if r["message"] == "refuse"}
        transient = {
            r["event_id"]: "es_rejected_execution_exception"
            for r in records
            if r["message"] == "later" and not self.accept_later
        }
        stored = [r for r in records if r["event_id"] not in permanent and r["event_id"] not in transient]
        super().write(collection, stored)
        if permanent or transient:
            raise PartialWriteError(permanent, transient)
        return len(records)


@pytest.fixture
def partial_backend(settings):
    settings.STORAGE_BACKENDS = {
        **settings.STORAGE_BACKENDS,
        AUDIT_LOGS: "tests.audit.test_flush_partial.PartialAuditSearch",
    }
    PartialAuditSearch.accept_later = False
    yield
    PartialAuditSearch.accept_later = False


def test_a_partial_bulk_write_dead_letters_retries_and_removes(write_buffer, partial_backend):
    write_buffer.add(
        AUDIT_LOGS,
        [
            audit_record("ok-1"),
            audit_record("perm-1", "refuse"),
            audit_record("trans-1", "later"),
            audit_record("ok-2"),
        ],
    )

    result = flush_all(write_buffer, wait=5)

    assert set(AuditEvent.objects.values_list("pk", flat=True)) == {"ok-1", "ok-2"}
    letter = DeadLetter.objects.get()
    assert (letter.collection, letter.record_id, letter.error) == (
        AUDIT_LOGS,
        "perm-1",
        "mapper_parsing_exception",
    )
    assert write_buffer.counts()[AUDIT_LOGS] == 1 and write_buffer.get(AUDIT_LOGS, "trans-1") is not None
    assert write_buffer.retrying_count() == 1
    assert (result.written[AUDIT_LOGS], result.dead_lettered[AUDIT_LOGS], result.retrying) == (2, 1, 1)


def test_a_transient_refusal_is_written_by_a_later_flush(write_buffer, partial_backend):
    write_buffer.add(AUDIT_LOGS, [audit_record("trans-1", "later")])
    flush_all(write_buffer, wait=5)
    PartialAuditSearch.accept_later = True

    result = flush_all(write_buffer, wait=5)

    assert AuditEvent.objects.filter(pk="trans-1").exists()
    assert write_buffer.counts()[AUDIT_LOGS] == 0 and write_buffer.retrying_count() == 0
    assert result.written[AUDIT_LOGS] == 1
    assert DeadLetter.objects.count() == 0


def test_audit_events_flush_after_sessions_and_tasks(write_buffer):
    from storage_backends.catalog import buffered_collections

    assert buffered_collections() == ("translation_sessions", "translation_tasks", AUDIT_LOGS)
    write_buffer.add(AUDIT_LOGS, [audit_record("e-1")])

    result = flush_all(write_buffer, wait=5)

    assert result.as_dict()["audit_logs_written"] == 1
    assert AuditEvent.objects.filter(pk="e-1").exists()
