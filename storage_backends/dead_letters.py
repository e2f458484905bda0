"""Dead letters: records the database refused for good, moved aside so they never block the rest.

A dead letter keeps the record exactly as accepted, the error, and the acceptance time. An operator
fixes the cause (schema, data) and re-queues it, which buffers it again as a new write.

    dead_letters_store(collection="translation_tasks", entries=[...], error="...")
    dead_letters_requeue(ids=[3, 4])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from core import metrics
from core.exceptions import InvalidRecords
from core.values import error_message
from storage_backends import catalog
from storage_backends.buffer import get_write_buffer
from storage_backends.models import DeadLetter
from storage_backends.records import BufferedRecord, us_to_datetime


def dead_letters_store(*, collection: str, entries: Iterable[BufferedRecord], error: str) -> int:
    """Insert dead letters for ``entries``; returns how many. Raises the database's error if the
    store itself cannot be written (the caller then keeps the records buffered)."""
    rows = [
        DeadLetter(
            collection=collection,
            record_id=entry.record_id,
            payload=entry.data.decode(),
            error=error[:10_000],
            accepted_at=us_to_datetime(entry.updated_us),
        )
        for entry in entries
    ]
    DeadLetter.objects.bulk_create(rows)
    metrics.DEAD_LETTERS.labels(type=catalog.item_type(collection)).inc(len(rows))
    return len(rows)


def dead_letters_requeue(*, ids: Iterable[int]) -> int:
    """Buffer the dead letters again (as new writes) and mark them re-queued; returns how many.

    Letters already re-queued are skipped. Each payload is checked against its collection's
    declared schema first (the API's validation of a write): a letter it refuses (say, written
    before a field was narrowed) raises ``InvalidRecords`` naming it, and nothing is re-queued,
    rather than being buffered to fail again. The buffer may refuse (BUFFER_FULL, unreachable):
    then nothing is marked and the error propagates.
    """
    with transaction.atomic():
        letters = list(
            DeadLetter.objects.select_for_update().filter(id__in=list(ids), requeued_at__isnull=True)
        )
        by_collection: dict[str, list[dict[str, Any]]] = {}
        invalid: list[dict[str, str]] = []
        for letter in letters:
            payload = orjson.loads(letter.payload)
            schema = catalog.spec(letter.collection).schema
            if schema is not None:
                try:
                    schema.model_validate(payload)
                except ValidationError as exc:
                    invalid.append({"field": f"dead_letter[{letter.id}]", "message": _first_error(exc)})
            by_collection.setdefault(letter.collection, []).append(payload)
        if invalid:
            raise InvalidRecords(
                f"{len(invalid)} of {len(letters)} dead letters fail their collection's validation; "
                "nothing was re-queued.",
                errors=invalid,
            )
        buffer = get_write_buffer()
        for collection, records in by_collection.items():
            buffer.add(collection, records)
        DeadLetter.objects.filter(id__in=[letter.id for letter in letters]).update(requeued_at=timezone.now())
    return len(letters)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error_message(error)}" if where else error_message(error)
