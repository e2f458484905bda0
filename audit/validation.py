"""Validation of audit batch bodies (docs/api.md §9) with pydantic v2, in translation.validation's style.

Strict types (a number where a string is expected is a 422, never coerced), unknown keys refused,
every invalid record reported by index and field, all or nothing. The value rules are the
contract's (core.values): ids, timestamps, strings without U+0000, free JSON.

Limits the contract leaves open, chosen here (and in the model's columns):

- ``ip``: at most 64 characters. An IPv6 address with a zone or an IPv4-mapped tail is at most 45
  characters; 64 leaves room for ``[addr]:port`` forms while refusing a forwarded-for chain, which
  belongs in ``details``. Not parsed: stored as sent.
- ``user_agent``: at most 1,024 characters (real browsers send 100-300; longer ones are noise).
- ``request_id``: at most 128 characters, no U+0000 (the service's own X-Request-ID is 1-128).
- ``resource_type`` and ``resource_id``: ids (no '/', control or bidi characters, no surrounding
  whitespace), since they name resources that have routes; ``actor_id`` and ``event_id`` too.
- ``action``: 1-100 characters, dotted words (``session.delete``): letters, digits, ``_``, ``-``
  and ``:`` between dots, so ``x.*`` can never be an action (it is the prefix syntax of the query).

Missing ``event_id`` and ``timestamp`` are filled by audit.services at acceptance (a UUID4, the
acceptance time), so a buffered event is complete.

    records = validate_audit_batch(body)   # -> list of JSON-ready dicts for the buffer
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
)

from audit.models import ActorType, AuditEvent, Outcome
from core.batches import MAX_BATCH, validate_batch_body
from core.values import check_free_json, check_id, no_nul, parse_timestamp

MAX_MESSAGE = 10_000
ACTION_PATTERN = r"^[A-Za-z0-9_:\-]+(\.[A-Za-z0-9_:\-]+)*$"


def _length(name: str) -> int:
    length = AuditEvent._meta.get_field(name).max_length
    assert length is not None
    return length


def _id(name: str) -> Any:
    return Annotated[
        str,
        Field(
            min_length=1,
            max_length=_length(name),
            description="No '/', control characters or surrounding whitespace.",
        ),
        AfterValidator(check_id),
    ]


def _chars(name: str) -> Any:
    return Annotated[
        str, Field(max_length=_length(name), description="Characters; no U+0000."), AfterValidator(no_nul)
    ]


Timestamp = Annotated[
    dt.datetime,
    BeforeValidator(parse_timestamp),
    Field(description="ISO 8601 with an offset (Z or ±hh:mm); years 1000-9999 in UTC; answered in UTC."),
]


def _free_json(value: dict[str, Any]) -> dict[str, Any]:
    check_free_json(value)
    return value


class AuditEventIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

    event_id: _id("event_id") | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Idempotency key: a resend of an id keeps the first version. Assigned "
        "(a UUID4) when omitted.",
    )
    timestamp: Timestamp | None = Field(
        default=None, description="When it happened; default the acceptance time."
    )
    actor_id: _id("actor_id")  # type: ignore[valid-type]
    actor_type: Literal[tuple(ActorType.values)]  # type: ignore[valid-type]
    action: Annotated[str, Field(min_length=1, max_length=_length("action"), pattern=ACTION_PATTERN)]
    resource_type: _id("resource_type") | None = None  # type: ignore[valid-type]
    resource_id: _id("resource_id") | None = None  # type: ignore[valid-type]
    outcome: Literal[tuple(Outcome.values)]  # type: ignore[valid-type]
    message: Annotated[str, Field(max_length=MAX_MESSAGE), AfterValidator(no_nul)] = ""
    ip: _chars("ip") | None = None  # type: ignore[valid-type]
    user_agent: _chars("user_agent") | None = None  # type: ignore[valid-type]
    request_id: _chars("request_id") | None = None  # type: ignore[valid-type]
    details: Annotated[dict[str, Any], AfterValidator(_free_json)] = Field(
        default_factory=dict, description="A free JSON object (stored, not searchable)."
    )


class AuditBatchIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    logs: list[AuditEventIn] = Field(min_length=1, max_length=MAX_BATCH)


_ADAPTER = TypeAdapter(list[AuditEventIn])


def validate_audit_batch(body: Any) -> list[dict[str, Any]]:
    """A whole ``{"logs": [...]}`` body, all or nothing: JSON-ready dicts (timestamps in UTC with
    ``Z``, absent optional fields present as null/default). ``MalformedJSON`` when the body is not
    an object, ``BatchTooLarge`` above 1000 events, ``RequestValidationError`` listing each field."""
    return validate_batch_body(body, key="logs", adapter=_ADAPTER, noun="events", long_noun="audit events")
