"""The SQL storage backend: the Django ORM over MySQL/MariaDB (production) or SQLite (embedded).

Upserts with ``INSERT ... ON DUPLICATE KEY UPDATE`` on MySQL/MariaDB and ``INSERT ... ON CONFLICT
(pk) DO UPDATE`` on SQLite, guarded by the acceptance time: a stored row is replaced only by a write
accepted no earlier than it (``updated_at``), so a flusher that lost its lock and commits late can
never put an older version over a newer one, whatever the interleaving.

    SQLBackend().write("translation_tasks", [task_record, ...])

Traps this module handles (each has a test on MariaDB):
- ON DUPLICATE KEY UPDATE fires on *any* unique key, so the tables keep no unique key but the PK.
- MySQL evaluates the assignments of ON DUPLICATE KEY UPDATE left to right, each seeing the
  columns already assigned: ``updated_at`` is assigned last, so every guard compares with the
  stored row's own acceptance time.
- ``updated_at`` is the acceptance time, set by the buffer; ``created_at`` is never updated, so
  an existing row keeps the time of its first write.
- The same id twice in one statement is an error on some databases and ambiguous on others;
  duplicates are removed first (the later record wins).
- One statement must stay under ``max_allowed_packet`` (MariaDB's default 16 MiB; error 2006 when
  exceeded), so statements are bounded by bytes as well as rows.

Values: on MySQL/MariaDB the fast path converts them the way Django does (aware datetimes to naive
UTC, JSON to text) without Django's per-value preparation: bench/ingest.py measured
``get_db_prep_save`` at about 100 us per task row in Python (18 fields), which capped the flush at
~6,600 rows/s against 40,000 rows/s for the raw statement. Elsewhere (SQLite, and MySQL with
``mysql_fast_path`` off, which tests compare) values go through ``get_db_prep_save``.

Errors are sorted into three kinds (``classify_error``): permanent (the data can never be stored:
dead-letter it), transient (the database is unreachable or busy: keep everything buffered and
retry) and unknown (an error code nobody listed: isolate the record and retry it a bounded number
of times, so an unexpected error can neither lose a record at once nor block flushing for ever).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import operator
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    models,
    transaction,
)
from django.db import Error as DjangoDatabaseError
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Collate
from django.db.models.lookups import Exact, In

from core import metrics, tracing
from core.db_fields import ExactCharField, binary_collation
from storage_backends import catalog, registry
from storage_backends.base import (
    Filter,
    PermanentWriteError,
    Query,
    StorageBackend,
    TransientWriteError,
    UnknownWriteError,
)
from storage_backends.records import collection_model

logger = logging.getLogger(__name__)
#: The deadlock retries' jitter: a generator of its own, not the process-wide ``random`` state
#: (which other code, and the property tests' data generation, share across threads).
_JITTER = random.Random()

# Rows per INSERT statement: large enough to amortise the round trip, small enough to keep one
# statement's parse and lock time short.
MAX_ROWS_PER_STATEMENT = 1000
# Bytes per INSERT statement: a quarter of MariaDB's default max_allowed_packet (16 MiB), leaving
# room for escaping (which can double a string) and the statement's own text.
MAX_BYTES_PER_STATEMENT = 4 * 1024 * 1024
# Lookups of many ids are split so an IN list never grows without bound.
MAX_IDS_PER_QUERY = 1000

# MySQL/MariaDB error codes that mean "this data can never be stored", whatever the exception
# class the driver picked (1292 bad datetime, 1264/1690 out of range, 1265/1406 truncated or too
# long, 1366/1367 bad value, 3140/3146/3156/3157 invalid or too deep JSON (MySQL), 4025/3819 CHECK
# constraint (MariaDB's json_valid among them), 1452 foreign key, 1048 null, 1062 duplicate key).
PERMANENT_MYSQL_CODES = frozenset(
    {1048, 1062, 1264, 1265, 1292, 1366, 1367, 1406, 1452, 1690, 3140, 3146, 3156, 3157, 3819, 4025}
)
# Codes that say nothing about the data: the server is away, busy, full, read-only or missing a
# table or a grant an operator will restore. Everything stays buffered and is retried.
TRANSIENT_MYSQL_CODES = frozenset(
    {
        1021,
        1030,
        1036,
        1037,
        1038,
        1040,
        1041,
        1044,
        1045,
        1053,
        1054,
        1114,
        1129,
        1142,
        1146,
        1152,
        1158,
        1159,
        1160,
        1161,
        1180,
        1181,
        1203,
        1205,
        1213,
        1226,
        1290,
        1317,
        1792,
        1836,
        1927,
        1969,
        2002,
        2003,
        2005,
        2006,
        2013,
        2055,
        3024,
        4031,
    }
)

PERMANENT, TRANSIENT, UNKNOWN = "permanent", "transient", "unknown"

#: Tries of one upsert transaction that InnoDB rolled back as a deadlock victim (ER_LOCK_DEADLOCK).
DEADLOCK_ATTEMPTS = 3


def _is_deadlock(exc: BaseException | None) -> bool:
    return isinstance(exc, DjangoDatabaseError) and bool(exc.args) and exc.args[0] == 1213


def classify_error(exc: BaseException) -> str:
    """``PERMANENT``, ``TRANSIENT`` or ``UNKNOWN`` for an error raised while writing records.

    A ``ValueError`` or ``ArithmeticError`` (overflow, bad decimal, unencodable text) raised while
    preparing values means a value the database cannot represent: the same record fails every
    time, so it is permanent. Any other exception may be a bug that would fail every record alike:
    unknown, so the records are retried before anything is dead-lettered.
    """
    if not isinstance(exc, DjangoDatabaseError):
        return PERMANENT if isinstance(exc, ValueError | ArithmeticError) else UNKNOWN
    if isinstance(exc, IntegrityError | DataError):
        return PERMANENT
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code in PERMANENT_MYSQL_CODES:
        return PERMANENT
    if code in TRANSIENT_MYSQL_CODES:
        return TRANSIENT
    if code is None and isinstance(exc, OperationalError | InterfaceError):
        return TRANSIENT  # no server code: the connection itself (closed, locked SQLite file, disk)
    return UNKNOWN


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


@dataclass(frozen=True)
class _UpsertPlan:
    """The guarded upsert of one collection: its SQL and how a record becomes a row of it."""

    sql: str
    values: Callable[[dict[str, Any]], tuple[Any, ...]]  # record -> column values in order
    fields: tuple[models.Field, ...]  # per column: the field whose conversion the value gets

    def row(self, record: dict[str, Any], connection: Any) -> list[Any]:
        return [
            field.get_db_prep_save(value, connection)
            for field, value in zip(self.fields, self.values(record), strict=True)
        ]


_NULL = b"NULL"


def _refuse(value: Any, kind: str) -> bytes:
    # A ValueError: the flusher treats it as a value this record can never be stored with.
    raise ValueError(f"{value!r} is not a valid {kind}")


def _literal_makers(string_literal: Callable[[bytes], bytes]) -> dict[str, Callable[[Any], bytes]]:
    """SQL literals of each kind of column, as the MySQL text protocol takes them.

    Built per statement batch (``string_literal`` is the connection's, escaping for its character
    set in C). Each refuses a value of the wrong type (ValueError) rather than converting it.
    """

    def text(value: Any) -> bytes:
        if value is None:
            return _NULL
        return string_literal(value.encode()) if type(value) is str else _refuse(value, "string")

    def integer(value: Any) -> bytes:
        if value is None:
            return _NULL
        return b"%d" % value if type(value) is int else _refuse(value, "integer")

    def decimal(value: Any) -> bytes:
        if value is None:
            return _NULL
        if isinstance(value, Decimal) and value.is_finite():
            return str(value).encode()
        return _refuse(value, "decimal")

    def datetime(value: Any) -> bytes:
        if value is None:
            return _NULL
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            return _refuse(value, "aware datetime")
        # The column holds naive UTC, as Django stores it; isoformat needs no escaping.
        return b"'%s'" % value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ").encode()

    def json(value: Any) -> bytes:
        return _NULL if value is None else string_literal(orjson.dumps(value))

    return {"text": text, "integer": integer, "decimal": decimal, "datetime": datetime, "json": json}


def _column_kind(field: models.Field) -> str:
    if isinstance(field, models.DateTimeField):
        return "datetime"
    if isinstance(field, models.JSONField):
        return "json"
    if isinstance(field, models.DecimalField):
        return "decimal"
    if isinstance(field, models.IntegerField):  # every integer field, big and positive ones included
        return "integer"
    return "text"


@dataclass(frozen=True)
class _StatementPlan:
    """The MySQL/MariaDB fast path: multi-row statements written as text, each value turned into
    its literal by a function chosen per column in advance. bench/ingest.py's profile: the
    driver's generic per-value quoting (``executemany``) took about 40 us a row, a third of the
    flush; this takes a fraction of that."""

    prefix: bytes  # INSERT INTO ... VALUES
    suffix: bytes  # [AS new] ON DUPLICATE KEY UPDATE ...
    values: Callable[[dict[str, Any]], tuple[Any, ...]]
    kinds: tuple[str, ...]

    def statement(self, records: Sequence[dict[str, Any]], string_literal: Callable[[bytes], bytes]) -> bytes:
        makers = _literal_makers(string_literal)
        literals = [makers[kind] for kind in self.kinds]
        rows = [
            b"(%s)"
            % b",".join([make(value) for make, value in zip(literals, self.values(record), strict=True)])
            for record in records
        ]
        return self.prefix + b",".join(rows) + self.suffix


def _guarded_upsert_sql(model: type[models.Model], connection: Any, *, row_alias: bool = False) -> str:
    """The upsert of one row, replacing a stored row only with a write accepted no earlier.

    ``row_alias`` (MySQL 8.0.20 and later, where ``VALUES()`` is deprecated) names the new row
    ``new`` instead; MariaDB knows only ``VALUES()``.
    """
    vendor = connection.vendor
    fields = model._meta.concrete_fields
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    columns = ", ".join(qn(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # updated_at last: MySQL assigns left to right, and the guards must see the stored value.
    updated = [f for f in fields if not f.primary_key and f.name not in ("created_at", "updated_at")]
    updated.append(model._meta.get_field("updated_at"))
    stamp = qn(model._meta.get_field("updated_at").column)
    insert = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
    if vendor == "mysql":

        def new(column: str) -> str:
            return f"new.{column}" if row_alias else f"VALUES({column})"

        assignments = ", ".join(
            f"{qn(f.column)} = IF({new(stamp)} >= {stamp}, {new(qn(f.column))}, {qn(f.column)})"
            for f in updated
        )
        return f"{insert}{' AS new' if row_alias else ''} ON DUPLICATE KEY UPDATE {assignments}"
    assignments = ", ".join(f"{qn(f.column)} = excluded.{qn(f.column)}" for f in updated)
    pk = qn(model._meta.pk.column)
    return (
        f"{insert} ON CONFLICT ({pk}) DO UPDATE SET {assignments} WHERE excluded.{stamp} >= {table}.{stamp}"
    )


def _row_alias_supported(connection: Any) -> bool:
    return not connection.mysql_is_mariadb and connection.mysql_version >= (8, 0, 20)


@functools.cache
def _upsert_plan(collection: str, alias: str) -> _UpsertPlan:
    """The guarded upsert of a collection with Django's own preparation of every value (SQLite, and
    MySQL with ``mysql_fast_path`` off, which the tests compare with the fast path)."""
    model = collection_model(collection)
    fields = tuple(model._meta.concrete_fields)
    values = operator.itemgetter(*(f.attname for f in fields))
    return _UpsertPlan(_guarded_upsert_sql(model, connections[alias]), values, fields)


@functools.cache
def _statement_plan(collection: str, alias: str, row_alias: bool) -> _StatementPlan:
    model = collection_model(collection)
    fields = model._meta.concrete_fields
    sql = _guarded_upsert_sql(model, connections[alias], row_alias=row_alias)
    head, tail = sql.split(" VALUES (", 1)
    suffix = tail.split(")", 1)[1]  # after the placeholders: " [AS new] ON DUPLICATE KEY UPDATE ..."
    return _StatementPlan(
        prefix=f"{head} VALUES ".encode(),
        suffix=suffix.encode(),
        values=operator.itemgetter(*(f.attname for f in fields)),
        kinds=tuple(_column_kind(f) for f in fields),
    )


@contextlib.contextmanager
def write_errors(backend: str) -> Iterator[None]:
    """Count a write, and turn any exception of it into the flusher's ``PermanentWriteError``,
    ``TransientWriteError`` or ``UnknownWriteError`` by ``classify_error``."""
    try:
        yield
    except Exception as exc:
        metrics.STORAGE_ERRORS.labels(backend=backend, operation="write").inc()
        kind = classify_error(exc)
        message = f"{type(exc).__name__}: {exc}"
        if kind == PERMANENT:
            raise PermanentWriteError(message) from exc
        if kind == TRANSIENT:
            raise TransientWriteError(message) from exc
        raise UnknownWriteError(message) from exc
    finally:
        metrics.STORAGE_OPERATIONS.labels(backend=backend, operation="write").inc()


class SQLBackend(StorageBackend):
    """The Django ORM on one database of ``DATABASES`` (``database``, from the route's OPTIONS;
    ``default`` otherwise): every write, read, delete and transaction of the plugin uses it."""

    name = "sql"

    def __init__(self, *, database: str = DEFAULT_DB_ALIAS) -> None:
        if database not in settings.DATABASES:
            raise ImproperlyConfigured(
                f"The SQL storage backend names the database {database!r}, which DATABASES does not "
                f"define (defined: {', '.join(settings.DATABASES)})"
            )
        self.database = database

    def write(
        self, collection: str, records: Sequence[dict[str, Any]], *, sizes: Sequence[int] | None = None
    ) -> int:
        """Upsert ``records`` in one transaction, in statements bounded by rows and bytes.

        Cost: one INSERT ... ON DUPLICATE KEY UPDATE per <=1000 rows / <=4 MiB; memory is one row
        tuple (or model instance, on the ORM path) per record plus its text.
        """
        if not records:
            return 0
        id_field = catalog.id_field(collection)
        # Duplicates inside one statement: keep the last occurrence (the latest write); then in
        # primary key order, so that flushers upserting overlapping rows at once (parallel shards)
        # lock them in one order, which keeps InnoDB deadlocks rare.
        latest: dict[str, int] = {record[id_field]: i for i, record in enumerate(records)}
        keep = sorted(latest.values(), key=lambda i: records[i][id_field])
        records = [records[i] for i in keep]
        sizes = [sizes[i] for i in keep] if sizes is not None else None
        started = time.perf_counter()
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                self._write_once(collection, records, sizes)
                break
            except TransientWriteError as exc:
                # A deadlock rolled the whole transaction back and InnoDB asks to restart it:
                # do so at once (after a short random pause) instead of failing the flush.
                # (Not inside a caller's transaction: InnoDB rolled all of it back.)
                retry = _is_deadlock(exc.__cause__) and not connections[self.database].in_atomic_block
                if attempt == DEADLOCK_ATTEMPTS or not retry:
                    raise
                logger.info("upsert chosen as a deadlock victim; retried", extra={"collection": collection})
                time.sleep(_JITTER.uniform(0.005, 0.05) * attempt)
        logger.debug(
            "sql upsert",
            extra={
                "collection": collection,
                "count": len(records),
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return len(records)

    def _write_once(
        self, collection: str, records: Sequence[dict[str, Any]], sizes: Sequence[int] | None
    ) -> None:
        connection = connections[self.database]
        with (
            write_errors(self.name),
            tracing.span(
                "db.upsert",
                collection=collection,
                record_count=len(records),
                attributes={
                    "db.system.name": connection.vendor,
                    "db.operation.name": "upsert",
                    "db.collection.name": collection_model(collection)._meta.db_table,
                },
            ),
            transaction.atomic(using=self.database),
        ):
            self._upsert(collection, records, sizes)

    #: Off only in tests that check both paths give the same rows.
    mysql_fast_path = True

    def _upsert(
        self, collection: str, records: Sequence[dict[str, Any]], sizes: Sequence[int] | None
    ) -> None:
        connection = connections[self.database]
        with connection.cursor() as cursor:
            if connection.vendor == "mysql" and self.mysql_fast_path:
                plan = _statement_plan(collection, self.database, _row_alias_supported(connection))
                string_literal = connection.connection.string_literal
                for chunk in _chunks(records, sizes):
                    cursor.execute(plan.statement(chunk, string_literal))
                return
            prepared = _upsert_plan(collection, self.database)
            if connection.vendor == "mysql":
                # mysqlclient joins the rows into multi-row statements of at most this many bytes.
                cursor.cursor.cursor.max_stmt_length = MAX_BYTES_PER_STATEMENT
            for chunk in _chunks(records, sizes):
                cursor.executemany(prepared.sql, [prepared.row(record, connection) for record in chunk])

    # --- reads -------------------------------------------------------------------------------

    def _rows(self, collection: str) -> QuerySet[Any]:
        """Every row of the collection's table, on this backend's database, unordered."""
        return collection_model(collection)._default_manager.using(self.database).order_by()

    def _filtered(self, collection: str, spec: Query) -> QuerySet[Any]:
        queryset = self._rows(collection)
        collation = binary_collation(connections[self.database])

        def condition(spec_filter: Filter) -> Q:
            lookup = spec_filter.field if spec_filter.op == "eq" else f"{spec_filter.field}__{spec_filter.op}"
            match = Q(**{lookup: spec_filter.value})
            if (
                collation is not None
                and spec_filter.op in ("eq", "in")
                and _needs_collation(queryset.model, spec_filter)
            ):
                # The plain comparison stays too, so an index on the column still serves it.
                exact = Exact if spec_filter.op == "eq" else In
                match &= Q(exact(Collate(F(spec_filter.field), collation), spec_filter.value))
            return match

        queryset = queryset.filter(*(condition(spec_filter) for spec_filter in spec.filters))
        if spec.any_of:
            alternatives = (
                functools.reduce(operator.and_, map(condition, group), Q()) for group in spec.any_of
            )
            queryset = queryset.filter(functools.reduce(operator.or_, alternatives))
        return queryset

    def _ordering(self, collection: str, order_by: tuple[str, ...]) -> tuple[str, ...]:
        id_field = catalog.id_field(collection)
        if not order_by or id_field in {name.lstrip("-") for name in order_by}:
            return order_by
        return (*order_by, id_field)

    def read(self, collection: str, record_id: str) -> dict[str, Any] | None:
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="read").inc()
        row: dict[str, Any] | None = self._rows(collection).filter(pk=record_id).values().first()
        return row

    def query(self, collection: str, spec: Query) -> list[dict[str, Any]]:
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="query").inc()
        queryset = self._filtered(collection, spec).order_by(*self._ordering(collection, spec.order_by))
        end = None if spec.limit is None else spec.offset + spec.limit
        return list(queryset.values(*spec.fields)[spec.offset : end])

    def count(self, collection: str, spec: Query) -> int:
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="query").inc()
        return int(self._filtered(collection, spec).count())

    def existing_ids(self, collection: str, record_ids: Iterable[str]) -> set[str]:
        rows = self._rows(collection)
        ids = list(set(record_ids))
        found: set[str] = set()
        for start in range(0, len(ids), MAX_IDS_PER_QUERY):
            part = ids[start : start + MAX_IDS_PER_QUERY]
            found.update(rows.filter(pk__in=part).values_list("pk", flat=True))
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="read").inc()
        return found

    def delete(self, collection: str, record_ids: Iterable[str]) -> int:
        """Plain ``DELETE ... WHERE pk IN`` statements (no Python-side cascade: children are the
        callers' to delete, in their own backend)."""
        rows = self._rows(collection)
        ids = list(set(record_ids))
        deleted = 0
        for start in range(0, len(ids), MAX_IDS_PER_QUERY):
            deleted += rows.filter(pk__in=ids[start : start + MAX_IDS_PER_QUERY])._raw_delete(self.database)
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="delete").inc()
        return deleted

    def health_check(self) -> bool:
        try:
            with connections[self.database].cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except DatabaseError:
            return False

    # --- fast paths: SQL-only reads the Query spec does not express ----------------------------

    def aggregate(self, collection: str, **aggregates: Any) -> dict[str, Any]:
        """Django aggregates (``Count``, ``Avg``, with ``filter=Q(...)``) over the whole table in one
        statement: the statistics' conditional aggregation."""
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="query").inc()
        result: dict[str, Any] = self._rows(collection).aggregate(**aggregates)
        return result

    def count_by(
        self, collection: str, fields: tuple[str, ...], filters: tuple[Filter, ...] = ()
    ) -> list[tuple[Any, ...]]:
        """``(*values of fields, count)`` per group of the matching rows (one GROUP BY)."""
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="query").inc()
        rows = (
            self._filtered(collection, Query(filters=filters))
            .values_list(*fields)
            .annotate(_count=models.Count("*"))
        )
        return list(rows)

    def query_json(
        self, collection: str, spec: Query, *, index: str | None = None
    ) -> list[tuple[Any, bytes]]:
        """``(id, the row's spec.fields as a JSON object)`` per record ``spec`` selects, rendered by
        MySQL/MariaDB (``JSON_OBJECT``) so that Python only joins bytes: the restore's fast path
        (bench/restore.py: ~25 us per task through the ORM and orjson, a fraction of it here).
        Datetimes render as orjson does (UTC, ``Z``, no fraction when the microseconds are 0).
        ``index``: an index to force (the planner may pick a primary-key range scan for a keyset
        page on a small or freshly analysed table). MySQL/MariaDB only (``json_rows_supported``).
        """
        metrics.STORAGE_OPERATIONS.labels(backend=self.name, operation="query").inc()
        connection = connections[self.database]
        sql, params = _json_select(connection, collection, spec, index)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def json_rows_supported(self) -> bool:
        return bool(connections[self.database].vendor == "mysql")

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """One consistent view of this database for every read inside (a read-only transaction).

        The service runs MySQL/MariaDB at READ COMMITTED, where each statement sees newer commits;
        ``SET TRANSACTION`` without a scope changes only the next transaction to REPEATABLE READ,
        whose snapshot is taken at its first read. Plain reads take no row locks, so writers are
        not held up.

        SQLite's transactions are snapshots already, but ``atomic()`` there begins IMMEDIATE
        (persistence_site/config.py), which takes the file's single write lock: held while an
        answer streams, it would stop every write (the embedded buffer's included). A DEFERRED
        transaction is a read snapshot in WAL mode and blocks no writer.
        """
        connection = connections[self.database]
        if connection.vendor == "sqlite" and not connection.in_atomic_block:
            # Django still sees autocommit, so the ORM's reads inside run in it; it ends with a
            # rollback (nothing to keep: it only read).
            connection.ensure_connection()
            raw = connection.connection
            raw.execute("BEGIN DEFERRED")
            try:
                yield
            finally:
                raw.execute("ROLLBACK")
            return
        if connection.vendor == "mysql" and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with transaction.atomic(using=self.database):
            yield

    def database_size_bytes(self) -> int:
        """Data plus indexes of this database's tables: the catalogue on MySQL/MariaDB (InnoDB's
        estimate, updated by the server), the file's pages on SQLite, 0 elsewhere."""
        connection = connections[self.database]
        with connection.cursor() as cursor:
            if connection.vendor == "mysql":
                cursor.execute(
                    "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
                    "WHERE table_schema = DATABASE()"
                )
                return int(cursor.fetchone()[0])
            if connection.vendor == "sqlite":
                cursor.execute("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
                return int(cursor.fetchone()[0])
        return 0


def _needs_collation(model: type[models.Model], spec: Filter) -> bool:
    """Whether an exact comparison on ``spec.field`` needs the binary collation: not for columns
    that have it (ExactCharField, and foreign keys to one), nor for non-text columns, nor for a
    choice column compared with its choices (its stored values are choices, which no collation
    confuses with one another)."""
    field = model._meta.get_field(spec.field)
    target = field.target_field if field.is_relation else field
    if isinstance(target, ExactCharField) or not isinstance(target, models.CharField | models.TextField):
        return False
    values = spec.value if spec.op == "in" else (spec.value,)
    choices = {value for value, _ in target.flatchoices}
    return not (choices and all(value in choices for value in values))


_SQL_OPS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_DATETIME_JSON = (
    "DATE_FORMAT({c}, IF(MICROSECOND({c}) = 0, '%%Y-%%m-%%dT%%H:%%i:%%sZ', '%%Y-%%m-%%dT%%H:%%i:%%s.%%fZ'))"
)


def _json_select(connection: Any, collection: str, spec: Query, index: str | None) -> tuple[str, list[Any]]:
    """The SELECT of ``query_json``: ``spec`` translated to MySQL/MariaDB SQL and its parameters."""
    model = collection_model(collection)
    qn = connection.ops.quote_name
    collation = binary_collation(connection)

    def column(name: str) -> tuple[models.Field, str]:
        field = model._meta.get_field(name)
        return field, qn(field.column)

    pairs = []
    for name in spec.fields:
        field, col = column(name)
        # Stored as naive UTC (Django's MySQL convention); NULL stays NULL (JSON null). Strings,
        # integers and decimals render as JSON strings and numbers.
        pairs.append(
            f"'{name}', {_DATETIME_JSON.format(c=col) if isinstance(field, models.DateTimeField) else col}"
        )

    def condition(spec_filter: Filter) -> tuple[str, list[Any]]:
        field, col = column(spec_filter.field)
        values = list(spec_filter.value) if spec_filter.op == "in" else [spec_filter.value]
        prepared = [field.get_db_prep_value(value, connection) for value in values]
        if spec_filter.op == "in":  # an empty list matches nothing
            compare = f"IN ({', '.join(['%s'] * len(prepared))})" if prepared else "IN (NULL)"
        else:
            compare = f"{_SQL_OPS[spec_filter.op]} %s"
        if collation is not None and spec_filter.op in ("eq", "in") and _needs_collation(model, spec_filter):
            return f"{col} {compare} AND {col} COLLATE {collation} {compare}", prepared * 2
        return f"{col} {compare}", prepared

    where, params = [], []
    for sql_condition, values in map(condition, spec.filters):
        where.append(sql_condition)
        params.extend(values)
    if spec.any_of:
        alternatives = []
        for group in spec.any_of:
            parts = [condition(spec_filter) for spec_filter in group]
            alternatives.append("(" + " AND ".join(part for part, _ in parts) + ")" if parts else "TRUE")
            params.extend(value for _, values in parts for value in values)
        where.append("(" + " OR ".join(alternatives) + ")")
    ordering = spec.order_by
    if ordering and model._meta.pk.name not in {name.lstrip("-") for name in ordering}:
        ordering = (*ordering, model._meta.pk.name)
    order = ", ".join(
        f"{column(name.lstrip('-'))[1]}{' DESC' if name[0] == '-' else ''}" for name in ordering
    )
    pk = qn(model._meta.pk.column)
    # BINARY: the driver hands back bytes (UTF-8), ready to join, instead of decoding to str.
    sql = (
        f"SELECT {pk}, CAST(JSON_OBJECT({', '.join(pairs)}) AS BINARY) FROM {qn(model._meta.db_table)}"
        f"{f' FORCE INDEX ({qn(index)})' if index else ''}"
        f"{' WHERE ' + ' AND '.join(where) if where else ''}{' ORDER BY ' + order if order else ''}"
    )
    if spec.limit is not None:
        sql += " LIMIT %s"
        params.append(spec.limit)
    if spec.offset:
        sql += " OFFSET %s" if spec.limit is not None else " LIMIT 18446744073709551615 OFFSET %s"
        params.append(spec.offset)
    return sql, params


def sql_backend(collection: str) -> SQLBackend:
    """The backend of ``collection`` when it is the SQL plugin (whose fast paths the caller needs);
    ImproperlyConfigured naming the route otherwise."""
    backend = registry.backend(collection)
    if not isinstance(backend, SQLBackend):
        raise ImproperlyConfigured(
            f"STORAGE_BACKENDS[{collection!r}] must be the SQL plugin (or a subclass) here, "
            f"not {type(backend).__name__}"
        )
    return backend
