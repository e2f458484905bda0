"""Validation of batch write bodies (docs/api.md §0 "Values", §1-§2) with pydantic v2.

DRF's per-item serializers cost several milliseconds per hundred records (bench/validation.py
measures both); pydantic-core validates a 1000-record batch in a fraction of that. Types are
strict: a number where a string is expected (or a float where an int is) is an error, never
coerced. Unknown keys are rejected. Every invalid record is reported, by index and field.

"202 is a promise": whatever a supported database (SQLite, MariaDB 10.11, MySQL 8) could refuse at
flush time is refused here instead. The limits come from the models (``max_length`` and integer
column types of translation.models), so a schema change moves validation with it:

- timestamps: ISO 8601 date-times with an offset (``Z`` or ``±hh:mm``), converted to UTC here,
  years 1000-9999 once in UTC (MySQL DATETIME); epoch numbers or strings, bare dates and
  offset-less values are refused;
- ids: no ``/`` (Django's ``<str:...>`` route segments cannot hold one), no control characters
  (Unicode category Cc) and no bidirectional controls (U+061C, U+200E/F, U+202A-E, U+2066-9,
  which make an id display as another), no surrounding whitespace, and not ``.`` or ``..``
  (URL clients remove such path segments), so every accepted id is reachable through the routes;
- strings: no U+0000 (MySQL and SQLite text handling, and C clients, truncate there); lengths
  count characters, as utf8mb4 VARCHAR columns do;
- free JSON objects (``game_info``, ``metadata``): at most ``MAX_JSON_DEPTH`` levels of nesting,
  where the object itself is level 1 and every object or array inside it adds one
  (``{"a": [1]}`` is 2 levels; MariaDB's ``json_valid`` refuses more than 32), at most
  ``MAX_JSON_BYTES`` serialised, integers within signed 64 bits, no NaN or infinity, no U+0000 in
  keys or values. The check is iterative, so a body nested 1,000 deep costs no recursion.

    records = validate_batch(body, kind="tasks")   # -> list of dicts ready for the buffer
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.db import models
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter
from pydantic.functional_validators import AfterValidator

from core.batches import validate_batch_body
from core.values import (  # noqa: F401 (re-exported: the rules used to live here)
    JSON_INT_RANGE,
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    check_free_json,
    check_id,
    parse_timestamp,
)
from core.values import no_nul as _no_nul
from translation.models import Session, SessionStatus, Task, TaskStatus

MAX_TEXT = 100_000  # docs/api.md §1: the TEXT columns hold more, the contract promises this much

#: Integer column types and the values every supported database stores in them. Positive integers
#: stay within 2**31 - 1 (Django's portable range) although MySQL's INT UNSIGNED holds more: a
#: counter beyond two billion is a client bug, not a count.
_INT_RANGES = {
    "PositiveIntegerField": (0, 2**31 - 1),
    "PositiveBigIntegerField": (0, 2**63 - 1),
}


def max_length(model: type[models.Model], name: str) -> int:
    """The column's ``max_length`` in characters (a ForeignKey: its target's)."""
    field = model._meta.get_field(name)
    target = field.target_field if field.is_relation else field
    length = target.max_length
    assert length is not None, f"{model.__name__}.{name} has no max_length"
    return length


def int_range(model: type[models.Model], name: str) -> tuple[int, int]:
    """The values the integer column ``name`` of ``model`` takes on every supported database."""
    return _INT_RANGES[model._meta.get_field(name).get_internal_type()]


# --- the records -------------------------------------------------------------------------------


_ID_RULES = (
    "Characters, not bytes. No '/', control or bidi characters, surrounding whitespace; not '.' or '..'."
)


def _chars(model: type[models.Model], name: str, *, min_length: int = 1) -> Any:
    return Annotated[
        str,
        Field(
            min_length=min_length, max_length=max_length(model, name), description="Characters; no U+0000."
        ),
        AfterValidator(_no_nul),
    ]


def _id(model: type[models.Model], name: str) -> Any:
    return Annotated[
        str,
        Field(min_length=1, max_length=max_length(model, name), description=_ID_RULES),
        AfterValidator(check_id),
    ]


def _int(model: type[models.Model], name: str) -> Any:
    low, high = int_range(model, name)
    return Annotated[int, Field(ge=low, le=high)]


Text = Annotated[
    str, Field(max_length=MAX_TEXT, description="Characters; no U+0000."), AfterValidator(_no_nul)
]
Timestamp = Annotated[
    dt.datetime,
    BeforeValidator(parse_timestamp),
    Field(description="ISO 8601 with an offset (Z or ±hh:mm); years 1000-9999 in UTC; answered in UTC."),
]
FreeJSON = Annotated[
    dict[str, Any] | None,
    AfterValidator(check_free_json),
    Field(
        description=f"A JSON object at most {MAX_JSON_DEPTH} levels deep (itself level 1), at most "
        f"{MAX_JSON_BYTES} bytes serialised, integers within signed 64 bits, no U+0000."
    ),
]
# Rounded to the column's 4 decimals here, so the buffered value is the stored one; "+ 0.0" turns
# -0.0 into 0.0, which the DECIMAL column stores.
Confidence = Annotated[float, Field(ge=0, le=1), AfterValidator(lambda v: round(v, 4) + 0.0)]


class _Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class SessionIn(_Record):
    session_id: _id(Session, "session_id")  # type: ignore[valid-type]
    filename: _chars(Session, "filename")  # type: ignore[valid-type]
    file_path: _chars(Session, "file_path")  # type: ignore[valid-type]
    status: Literal[tuple(SessionStatus.values)]  # type: ignore[valid-type]
    game_info: FreeJSON = Field(default_factory=dict)
    llm_provider: _chars(Session, "llm_provider")  # type: ignore[valid-type]
    metadata: FreeJSON = Field(default_factory=dict)
    total_tasks: _int(Session, "total_tasks") = 0  # type: ignore[valid-type]
    completed_tasks: _int(Session, "completed_tasks") = 0  # type: ignore[valid-type]
    failed_tasks: _int(Session, "failed_tasks") = 0  # type: ignore[valid-type]
    processing_tasks: _int(Session, "processing_tasks") = 0  # type: ignore[valid-type]


class TaskIn(_Record):
    task_id: _id(Task, "task_id")  # type: ignore[valid-type]
    session_id: _id(Task, "session")  # type: ignore[valid-type]
    batch_id: _id(Task, "batch_id")  # type: ignore[valid-type]
    sheet_name: _chars(Task, "sheet_name")  # type: ignore[valid-type]
    row_index: _int(Task, "row_index")  # type: ignore[valid-type]
    column_name: _chars(Task, "column_name")  # type: ignore[valid-type]
    source_text: Text
    target_text: Text | None = None
    context: Text | None = None
    status: Literal[tuple(TaskStatus.values)]  # type: ignore[valid-type]
    confidence: Confidence | None = None
    error_message: Text | None = None
    retry_count: _int(Task, "retry_count") = 0  # type: ignore[valid-type]
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    duration_ms: _int(Task, "duration_ms") | None = None  # type: ignore[valid-type]


class SessionBatchIn(_Record):
    sessions: list[SessionIn]


class TaskBatchIn(_Record):
    tasks: list[TaskIn]


_RECORD_MODELS: dict[str, type[_Record]] = {"sessions": SessionIn, "tasks": TaskIn}
_ADAPTERS = {kind: TypeAdapter(list[model]) for kind, model in _RECORD_MODELS.items()}


def validate_batch(body: Any, *, kind: Literal["sessions", "tasks"]) -> list[dict[str, Any]]:
    """Validate a whole batch body; all-or-nothing (core.batches.validate_batch_body).

    Returns the records as JSON-ready dicts (every optional field present with its default,
    timestamps as ISO strings in UTC ending in ``Z``, as the stored rows are answered). Raises
    ``MalformedJSON`` when the body is not an object, ``BatchTooLarge`` above 1000 records and
    ``RequestValidationError`` listing every invalid record by index and field.
    """
    return validate_batch_body(body, key=kind, adapter=_ADAPTERS[kind], noun="records")
