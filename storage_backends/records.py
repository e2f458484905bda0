"""How buffered records are encoded, and decoded into model-ready dicts.

A buffered record is the validated JSON of one write plus three numbers: a sequence number that
names this exact write (flushes delete a record only if it is still that write), the acceptance
time of the first buffered write of the id (``created_at``) and of this one (``updated_at``), in
microseconds since the epoch.

    entry = BufferedRecord(record_id="t-1", seq=7, created_us=..., updated_us=..., data=b'{...}')
    Task(**decode(TASKS, entry))
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from django.db import models

from storage_backends import catalog

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class BufferedRecord:
    record_id: str
    seq: int
    created_us: int
    updated_us: int
    data: bytes
    #: The buffer shard the entry was read from (``BUFFER_SHARDS``; always 0 with one shard).
    shard: int = 0


def us_to_datetime(us: int) -> dt.datetime:
    """Exact (integer) conversion; a float division would lose microseconds."""
    return EPOCH + dt.timedelta(microseconds=us)


def datetime_to_us(value: dt.datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def collection_model(collection: str) -> type[models.Model]:
    """The Django model of ``collection``, as its app declared it (storage_backends.catalog)."""
    return catalog.spec(collection).model_class()


@functools.cache
def _typed_fields(collection: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    model = collection_model(collection)
    datetimes = tuple(
        f.attname
        for f in model._meta.concrete_fields
        if isinstance(f, models.DateTimeField) and f.attname not in ("created_at", "updated_at")
    )
    decimals = tuple(f.attname for f in model._meta.concrete_fields if isinstance(f, models.DecimalField))
    return datetimes, decimals


def encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def decode(collection: str, entry: BufferedRecord) -> dict[str, Any]:
    """A model-ready dict: aware datetimes, ``Decimal`` for decimals, service timestamps set."""
    record: dict[str, Any] = orjson.loads(entry.data)
    datetimes, decimals = _typed_fields(collection)
    for name in datetimes:
        value = record.get(name)
        if value is not None:
            record[name] = dt.datetime.fromisoformat(value)
    for name in decimals:
        value = record.get(name)
        if value is not None:
            record[name] = Decimal(repr(value))
    record["created_at"] = us_to_datetime(entry.created_us)
    record["updated_at"] = us_to_datetime(entry.updated_us)
    return record
