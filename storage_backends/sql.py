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

On MySQL/MariaDB the same upsert is sent through the driver's ``executemany`` instead of
``bulk_create``: bench/ingest.py measured bulk_create's per-value preparation at about 100 us per
task row in Python (18 fields through ``get_db_prep_save``), which capped the flush at ~6,600 rows/s
against 40,000 rows/s for the raw statement. The fast path builds the identical statement once per
collection and converts values the way Django does (aware datetimes to naive UTC, JSON to text).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    NotSupportedError,
    connection,
    models,
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


def _naive_utc(value: dt.datetime | None) -> str | None:
    # Text, not a datetime: the driver escapes strings in C but formats datetimes in Python.
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ") if value is not None else None


def _json_text(value: Any) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None


def _decimal_text(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


@dataclass(frozen=True)
class _UpsertPlan:
    sql: str
    values: Callable[[dict[str, Any]], tuple[Any, ...]]  # record -> column values in order
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, Django-like conversion)

    def row(self, record: dict[str, Any]) -> tuple[Any, ...] | list[Any]:
        values = self.values(record)
        if not self.converters:
            return values
        row = list(values)
        for index, convert in self.converters:
            row[index] = convert(row[index])
        return row


@functools.cache
def _mysql_upsert_plan(collection: str) -> _UpsertPlan:
    """The upsert statement of a collection and, per column, the value conversion Django would do."""
    model = collection_model(collection)
    fields = model._meta.concrete_fields
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    updates = ", ".join(
        f"{qn(f.column)} = VALUES({qn(f.column)})"
        for f in fields
        if not f.primary_key and f.name != "created_at"
    )
    sql = f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({placeholders}) ON DUPLICATE KEY UPDATE {updates}"
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for index, f in enumerate(fields):
        if isinstance(f, models.DateTimeField):
            converters.append((index, _naive_utc))
        elif isinstance(f, models.JSONField):
            converters.append((index, _json_text))
        elif isinstance(f, models.DecimalField):
            converters.append((index, _decimal_text))
    return _UpsertPlan(sql, operator.itemgetter(*(f.attname for f in fields)), tuple(converters))


class SQLBackend(StorageBackend):
    name = "sql"

    def write(
        self, collection: str, records: Sequence[dict[str, Any]], *, sizes: Sequence[int] | None = None
    ) -> int:
        """Upsert ``records`` in one transaction, in statements bounded by rows and bytes.

        Cost: one INSERT ... ON DUPLICATE KEY UPDATE per <=1000 rows / <=4 MiB; memory is one row
        tuple (or model instance, on the ORM path) per record plus its text.
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
        started = time.perf_counter()
        try:
            with transaction.atomic():
                if connection.vendor == "mysql" and self.mysql_fast_path:
                    self._upsert_mysql(collection, records, sizes)
                else:
                    self._upsert_orm(model, records, sizes)
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

    #: Off only in tests that check both paths give the same rows.
    mysql_fast_path = True

    @staticmethod
    def _upsert_orm(
        model: type[models.Model], records: Sequence[dict[str, Any]], sizes: Sequence[int] | None
    ) -> None:
        fields = [f.attname for f in model._meta.concrete_fields]
        update_fields = [
            f.name for f in model._meta.concrete_fields if not f.primary_key and f.name != "created_at"
        ]
        options: dict[str, Any] = {"update_conflicts": True, "update_fields": update_fields}
        if connection.features.supports_update_conflicts_with_target:
            options["unique_fields"] = [model._meta.pk.name]
        for chunk in _chunks(records, sizes):
            objs = [model(**{name: record.get(name) for name in fields}) for record in chunk]
            model.objects.bulk_create(objs, **options)

    @staticmethod
    def _upsert_mysql(
        collection: str, records: Sequence[dict[str, Any]], sizes: Sequence[int] | None
    ) -> None:
        plan = _mysql_upsert_plan(collection)
        with connection.cursor() as cursor:
            driver_cursor = cursor.cursor.cursor
            # mysqlclient joins the rows into multi-row statements of at most this many bytes.
            driver_cursor.max_stmt_length = MAX_BYTES_PER_STATEMENT
            for chunk in _chunks(records, sizes):
                cursor.executemany(plan.sql, [plan.row(record) for record in chunk])

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
