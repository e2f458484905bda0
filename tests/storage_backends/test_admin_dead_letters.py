"""The dead-letter admin: visible records and the re-queue action."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from django.urls import reverse

from storage_backends.models import DeadLetter
from tests.factories import session_record
from tests.processes import free_port

pytestmark = pytest.mark.django_db(transaction=True)
URL = reverse("admin:storage_backends_deadletter_changelist")


def letter(record: dict, **fields) -> DeadLetter:
    return DeadLetter.objects.create(
        collection="translation_sessions",
        record_id=record["session_id"],
        payload=orjson.dumps(record).decode(),
        error="(1406, Data too long for column 'filename')",
        accepted_at=dt.datetime.now(dt.UTC),
        **fields,
    )


def test_dead_letters_are_listed_with_their_error(admin_client, write_buffer):
    letter(session_record("s-1"))

    html = admin_client.get(URL).content.decode()

    assert "s-1" in html and "Data too long" in html


def test_requeue_buffers_the_record_again_and_marks_it(admin_client, write_buffer):
    waiting = letter(session_record("s-1", filename="fixed.xlsx"))

    page = admin_client.post(URL, {"action": "requeue", "_selected_action": [waiting.pk]}, follow=True)

    assert "Re-queued 1 dead letters" in page.content.decode()
    assert write_buffer.get("translation_sessions", "s-1")["filename"] == "fixed.xlsx"
    waiting.refresh_from_db()
    assert waiting.requeued_at is not None


def test_requeue_skips_letters_already_requeued(admin_client, write_buffer):
    done = letter(session_record("s-1"), requeued_at=dt.datetime.now(dt.UTC))

    page = admin_client.post(URL, {"action": "requeue", "_selected_action": [done.pk]}, follow=True)

    assert "Re-queued 0 dead letters (1 already re-queued, skipped)" in page.content.decode()
    assert write_buffer.get("translation_sessions", "s-1") is None


def test_requeue_with_the_buffer_down_changes_nothing(admin_client, write_buffer, settings):
    from storage_backends.buffer import _buffer_for

    waiting = letter(session_record("s-1"))
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    try:
        page = admin_client.post(URL, {"action": "requeue", "_selected_action": [waiting.pk]}, follow=True)
    finally:
        _buffer_for.cache_clear()

    assert "Nothing was re-queued" in page.content.decode()
    waiting.refresh_from_db()
    assert waiting.requeued_at is None
