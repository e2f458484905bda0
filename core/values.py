"""The contract's value rules (docs/api.md §0 "Values"), shared by every app's validation.

Timestamps, ids, strings and free JSON objects follow the same rules in every collection, so the
rules live here, below the apps (translation, users, files and audit import them; this module
imports no app).

    check_id("s-1"); parse_timestamp("2025-09-30T10:15:30Z"); check_free_json({"a": 1})
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson

MAX_JSON_DEPTH = 20
MAX_JSON_BYTES = 64 * 1024
#: What a JSON integer may be: MySQL's JSON type and orjson hold signed 64-bit integers.
JSON_INT_RANGE = (-(2**63), 2**63 - 1)

# --- timestamps --------------------------------------------------------------------------------

# RFC 3339's profile of ISO 8601: seconds required, any fraction (beyond microseconds it is
# truncated, as the database would), and an offset. Anything else (bare dates, epoch seconds as a
# number or a string, offset-less date-times) is refused rather than guessed.
_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_TIMESTAMP_FORMAT = "must be an ISO 8601 date-time with an offset, e.g. 2025-09-30T10:15:30Z or +02:00"
_YEAR_RANGE = "must be between the years 1000 and 9999 once converted to UTC"


def parse_timestamp(value: Any) -> dt.datetime:
    """An aware UTC datetime from an ISO 8601 date-time string with an offset; ValueError else."""
    if isinstance(value, dt.datetime):  # from Python callers: the same rules, minus the format
        if value.utcoffset() is None:
            raise ValueError(_TIMESTAMP_FORMAT)
        parsed = value
    else:
        match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(_TIMESTAMP_FORMAT)
        offset = match["offset"].upper().replace("Z", "+00:00")
        fraction = f".{match['fraction'][:6]:0<6}" if match["fraction"] else ""
        try:
            parsed = dt.datetime.fromisoformat(f"{match['date']}T{match['time']}{fraction}{offset}")
        except ValueError as exc:  # 2025-02-30, 24:00:00, an offset of 24 hours or more
            raise ValueError(f"{_TIMESTAMP_FORMAT} ({exc})") from None
    try:
        utc = parsed.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is in the year 10000
        raise ValueError(_YEAR_RANGE) from None
    if not 1000 <= utc.year <= 9999:
        raise ValueError(_YEAR_RANGE)
    return utc


# --- strings and ids ---------------------------------------------------------------------------

# Category Cc is exactly U+0000-U+001F and U+007F-U+009F; then the Bidi_Control characters.
_ID_FORBIDDEN = re.compile("[/\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain U+0000")
    return value


def check_id(value: str) -> str:
    """An id reachable as one URL path segment and shown as it is (docs/api.md §0 "Ids")."""
    bad = _ID_FORBIDDEN.search(value)
    if bad is not None:
        char = bad.group()
        if char == "/":
            raise ValueError("must not contain '/'")
        raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if value in (".", ".."):
        raise ValueError("must not be '.' or '..' (URL paths drop such segments)")
    return value


# --- free JSON objects -------------------------------------------------------------------------


def check_free_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A free JSON object every supported database stores as sent; ValueError naming the rule.

    Depth: the object itself is level 1 and each object or array inside adds one; scalars add
    none. Walked with an explicit stack, never recursion, and refused as soon as a level too deep
    is seen, so the cost is bounded by the (already size-limited) body.
    """
    if value is None:
        return None
    low, high = JSON_INT_RANGE
    too_deep = f"must be nested at most {MAX_JSON_DEPTH} levels deep (the object is level 1)"
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]  # objects and arrays only
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(too_deep)
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str) or "\x00" in key:
                    raise ValueError("keys must be strings without U+0000")
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif isinstance(child, str):
                if "\x00" in child:
                    raise ValueError("must not contain U+0000 in its strings")
            elif isinstance(child, bool) or child is None:
                pass
            elif isinstance(child, int):
                if not low <= child <= high:
                    raise ValueError("integers must be within the signed 64-bit range")
            elif isinstance(child, float):
                if child != child or child in (float("inf"), float("-inf")):
                    raise ValueError("must not contain NaN or infinity")
            else:
                raise ValueError(f"must hold only JSON values (found {type(child).__name__})")
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:  # lone surrogates, from Python callers only
        raise ValueError(f"is not serialisable as JSON ({exc})") from None
    if size > MAX_JSON_BYTES:
        raise ValueError(f"must be at most {MAX_JSON_BYTES} bytes serialised (got {size})")
    return value


def error_message(error: Any) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) in the contract's words: an
    unknown key is "unknown field", a missing one "field required", a validator's own message
    without pydantic's "Value error, " prefix."""
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "field required"
    message: str = error["msg"]
    return message.removeprefix("Value error, ")
