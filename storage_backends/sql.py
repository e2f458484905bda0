"""The SQL storage backend: the Django ORM over MySQL/MariaDB (production) or SQLite (embedded).

Upserts with ``bulk_create(update_conflicts=True)``, which becomes ``INSERT ... ON DUPLICATE KEY
UPDATE`` on MySQL/MariaDB and ``INSERT ... ON CONFLICT (pk) DO UPDATE`` on SQLite.

    SQLBackend().write("translation_tasks", [task_record, ...])

Traps this module handles (each has a test on MariaDB):
- MySQL/MariaDB cannot name the conflict target, and Django raises NotSupportedError if
  ``unique_fields`` is passed there; it is passed only where the database supports it.
- ON DUPLICATE KEY UPDATE fires on *any* unique key, so the tables keep no unique key but the PK.
- ``updated_at`` is the acceptance time, set by the buffer and listed in ``update_fields``;
  ``created_at`` is not listed, so an existing row keeps the time of its first write.
- The same id twice in one statement is an error on some databases and ambiguous on others;
  duplicates are removed first (the later record wins).
- One statement must stay under ``max_allowed_packet`` (MariaDB's default 16 MiB; error 2006 when
  exceeded), so statements are bounded by bytes as well as rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    NotSupportedError,
    connection,
    transaction,
)

from persistence_site import metrics
from storage_backends.base import PermanentWriteError, StorageBackend, TransientWriteError
from storage_backends.records import ID_FIELDS, collection_model

logger = logging.getLogger(__name__)

# Rows per INSERT statement: large enough to amortise the round trip, small enough to keep one
# statement's parse and lock time short.
MAX_ROWS_PER_STATEMENT = 1000
# Bytes per INSERT statement: a quarter of MariaDB's default max_allowed_packet (16 MiB), leaving
# room for escaping (which can double a string) and the statement's own text.
MAX_BYTES_PER_STATEMENT = 4 * 1024 * 1024
# Lookups of many ids are split so an IN list never grows without bound.
MAX_IDS_PER_QUERY = 1000

# MySQL/MariaDB error codes that mean "this data can never be stored", whatever the exception
# class the driver picked (1292 bad datetime, 1264 out of range, 1265/1406 truncated or too long,
# 1366/1367 bad value, 3140 invalid JSON, 4025/3819 CHECK constraint, 1452 foreign key, 1048 null).
PERMANENT_MYSQL_CODES = frozenset({1048, 1062, 1264, 1265, 1292, 1366, 1367, 1406, 1452, 3140, 3819, 4025})


def _is_permanent(exc: DatabaseError) -> bool:
    if isinstance(exc, IntegrityError | DataError):
        return True
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    # Anything else (lost connection, deadlock, lock wait timeout, read-only, too many connections,
    # unknown codes) is treated as transient: the records stay buffered and are retried, never dropped.
    return code in PERMANENT_MYSQL_CODES


def _chunks(
    records: Sequence[dict[str, Any]], sizes: Sequence[int] | None
) -> Iterable[Sequence[dict[str, Any]]]:
    if sizes is None:
        for start in range(0, len(records), MAX_ROWS_PER_STATEMENT):
            yield records[start : start + MAX_ROWS_PER_STATEMENT]
        return
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and (
            index - start >= MAX_ROWS_PER_STATEMENT or total + size > MAX_BYTES_PER_STATEMENT
        ):
            yield records[start:index]
            start, total = index, 0
        total += size
    if start < len(records):
        yield records[start:]


class SQLBackend(StorageBackend):
    name = "sql"

    def write(
        self, collection: str, records: Sequence[dict[str, Any]], *, sizes: Sequence[int] | None = None
    ) -> int:
        """Upsert ``records`` in one transaction, in statements bounded by rows and bytes.

        Cost: one INSERT ... ON DUPLICATE KEY UPDATE per <=1000 rows / <=4 MiB; memory is the model
        instances of the batch (about 2 KB each plus their text).
        """
        if not records:
            return 0
        model = collection_model(collection)
        id_field = ID_FIELDS[collection]
        # Duplicates inside one statement: keep the last occurrence (the latest write).
        latest: dict[str, int] = {record[id_field]: i for i, record in enumerate(records)}
        if len(latest) != len(records):
            keep = sorted(latest.values())
            records = [records[i] for i in keep]
            sizes = [sizes[i] for i in keep] if sizes is not None else None
        fields = [f.attname for f in model._meta.concrete_fields]
        update_fields = [
            f.name for f in model._meta.concrete_fields if not f.primary_key and f.name != "created_at"
        ]
        options: dict[str, Any] = {"update_conflicts": True, "update_fields": update_fields}
        if connection.features.supports_update_conflicts_with_target:
            options["unique_fields"] = [model._meta.pk.name]
        started = time.perf_counter()
        try:
            with transaction.atomic():
                for chunk in _chunks(records, sizes):
                    objs = [model(**{name: record.get(name) for name in fields}) for record in chunk]
                    model.objects.bulk_create(objs, **options)
        except NotSupportedError:
            raise  # a programming error, never a data problem: let it surface
        except DatabaseError as exc:
            metrics.STORAGE_ERRORS.labels(backend=self.name, operation="write").inc()
            if _is_permanent(exc):
                raise PermanentWriteError(str(exc)) from exc
            raise TransientWriteError(str(exc)) from exc
        finally:
            metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="write").inc()
        logger.debug(
            "sql upsert",
            extra={
                "collection": collection,
                "count": len(records),
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return len(records)

    def read(self, collection: str, record_id: str) -> dict[str, Any] | None:
        model = collection_model(collection)
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="read").inc()
        return model.objects.filter(pk=record_id).values().first()

    def query(
        self,
        collection: str,
        *,
        filters: dict[str, Any] | None = None,
        order_by: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        model = collection_model(collection)
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="query").inc()
        queryset = model.objects.filter(**(filters or {})).order_by(*order_by, "pk")
        return list(queryset.values()[offset : offset + limit])

    def existing_ids(self, collection: str, record_ids: Iterable[str]) -> set[str]:
        model = collection_model(collection)
        ids = list(set(record_ids))
        found: set[str] = set()
        for start in range(0, len(ids), MAX_IDS_PER_QUERY):
            part = ids[start : start + MAX_IDS_PER_QUERY]
            found.update(model.objects.filter(pk__in=part).values_list("pk", flat=True))
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="read").inc()
        return found

    def delete(self, collection: str, record_ids: Iterable[str]) -> int:
        model = collection_model(collection)
        ids = list(set(record_ids))
        deleted = 0
        for start in range(0, len(ids), MAX_IDS_PER_QUERY):
            deleted += model.objects.filter(pk__in=ids[start : start + MAX_IDS_PER_QUERY])._raw_delete(
                model.objects.db
            )
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="delete").inc()
        return deleted

    def health_check(self) -> bool:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except DatabaseError:
            return False
