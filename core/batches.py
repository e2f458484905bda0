"""Validation of a batch write body, ``{"<key>": [record, ...]}``, the same for every collection:
all or nothing, 1 to ``MAX_BATCH`` records, every invalid record reported by index and field
(docs/api.md §0 "Errors").

    records = validate_batch_body(body, key="tasks", adapter=TypeAdapter(list[TaskIn]), noun="records")
    # -> JSON-ready dicts (timestamps as ISO strings in UTC ending in Z), every optional field present
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from core import tracing
from core.errors import BatchTooLarge, MalformedJSON, RequestValidationError
from core.values import error_message

MAX_BATCH = 1000


def validate_batch_body(
    body: Any,
    *,
    key: str,
    adapter: TypeAdapter[Any],
    noun: str,
    long_noun: str | None = None,
) -> list[dict[str, Any]]:
    """The records of ``body[key]``, validated by ``adapter`` (a ``TypeAdapter(list[Model])``).

    ``noun`` names the records in the messages ("records", "events"); ``long_noun`` where the
    message names them without context (default ``noun``). Raises ``MalformedJSON`` when the body
    is not an object, ``BatchTooLarge`` above ``MAX_BATCH`` records and ``RequestValidationError``
    listing every unknown key, missing list or invalid record (``<key>[<index>].<field>``).
    """
    long_noun = long_noun or noun
    if not isinstance(body, dict):
        raise MalformedJSON("Request body must be a JSON object.")
    errors = [{"field": name, "message": "unknown field"} for name in sorted(set(body) - {key})]
    items = body.get(key)
    if items is None:
        errors.append({"field": key, "message": "field required"})
    elif not isinstance(items, list):
        errors.append({"field": key, "message": f"must be a list of {long_noun}"})
    elif not items:
        errors.append({"field": key, "message": f"must hold between 1 and {MAX_BATCH} {noun}"})
    elif len(items) > MAX_BATCH:
        raise BatchTooLarge(
            f"A batch holds at most {MAX_BATCH} {noun}; this one holds {len(items)}.",
            errors=[{"field": key, "message": f"at most {MAX_BATCH} {noun} (got {len(items)})"}],
        )
    if errors or not isinstance(items, list):
        raise RequestValidationError(errors=errors)

    with tracing.span("validate", schema=key, record_count=len(items)):
        try:
            validated = adapter.validate_python(items)
        except ValidationError as exc:
            details = []
            for error in exc.errors(include_url=False, include_input=False):
                index, *path = error["loc"]
                field = f"{key}[{index}]" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in path)
                details.append({"field": field, "message": error_message(error)})
            invalid = len({d["field"].split("]")[0] for d in details})
            raise RequestValidationError(
                f"{invalid} of {len(items)} {long_noun} are invalid; nothing was accepted.", errors=details
            ) from None
        records: list[dict[str, Any]] = adapter.dump_python(validated, mode="json")
        return records
