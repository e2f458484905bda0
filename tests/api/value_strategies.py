"""Hypothesis strategies for batch records at the edges of docs/api.md §0 "Values" and §1.

Every field has a strategy of valid values (which the service must accept and answer back
unchanged) and one of invalid values (which it must refuse with a 422 naming the field). The
limits come from the models, like the service's, but validity is decided here independently of
translation.validation: the two are meant to disagree when one of them is wrong.

    batch = data.draw(batches())   # Batch(session, tasks, invalid=("tasks", 1, "start_time") or None)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import strategies as st

from translation.models import Session, Task

MAX_TEXT = 100_000
MAX_DEPTH = 20  # the object itself is level 1
MAX_JSON_BYTES = 65_536
INT64 = (-(2**63), 2**63 - 1)
SESSION_STATUSES = ["pending", "processing", "completed", "failed", "cancelled"]
TASK_STATUSES = ["pending", "processing", "completed", "failed"]
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
FOUR_BYTE = ["😀", "𠀀", "🏳"]  # an emoji, a rare CJK ideograph (plane 2), a flag base


def _length(model: Any, name: str) -> int:
    field = model._meta.get_field(name)
    return (field.target_field if field.is_relation else field).max_length


# --- strings -------------------------------------------------------------------------------------

# Anything a JSON string can carry except U+0000 (lone surrogates cannot be sent as UTF-8):
# controls, bidi controls, U+2028, BOM, noncharacters, 4-byte characters.
_text_char = st.one_of(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    st.sampled_from(
        ["\x01", "\x1f", "\x7f", "\x85", "\u202e", "\u2028", "\ufeff", "\uffff", " ", *FOUR_BYTE]
    ),
)


def texts(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Short strings of any characters, or exactly ``max_size`` characters (4-byte ones too)."""
    short = st.text(_text_char, min_size=min_size, max_size=min(max_size, 12))
    full = st.sampled_from(["x", "é", *FOUR_BYTE]).map(lambda c: c * max_size)
    return st.one_of(short, short, short, full)


def invalid_texts(min_size: int, max_size: int, *, nullable: bool = False) -> st.SearchStrategy[Any]:
    bad: list[Any] = ["a\x00b", "\x00", 5, ["a"], {"a": "b"}]
    if min_size:
        bad.append("")
    if not nullable:
        bad.append(None)
    over = st.sampled_from(["x", *FOUR_BYTE]).map(lambda c: c * (max_size + 1))
    return st.one_of(st.sampled_from(bad), over)


# --- ids -----------------------------------------------------------------------------------------

_ID_PIECES = [
    "?", "#", "%", "%2F", "%20", "%00", " ", "+", ";", "&", "=", ":", "@", "~", "\\", ".", "..", "'", '"',
    "<", ">", "[", "]", "{", "}", "|", "^", "`", "ü", "日本", "\u00a0", "\u2028", "\ufeff", "a", "Z", "0",
    *FOUR_BYTE,
]  # fmt: skip
_id_char = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="/" + BIDI_CONTROLS)


def _id_ok(max_size: int):
    return lambda s: 1 <= len(s) <= max_size and s == s.strip() and s not in (".", "..")


def ids(max_size: int) -> st.SearchStrategy[str]:
    """Ids the contract accepts: URL-special characters, route words, 4-byte characters."""
    pieces = st.lists(st.one_of(st.sampled_from(_ID_PIECES), _id_char), min_size=1, max_size=6)
    return st.one_of(
        pieces.map("".join).filter(_id_ok(max_size)),
        st.sampled_from(["batch", "cleanup", "status", "tasks", "...", ".a", "a.", "%", "?", "#", "a b"]),
        st.sampled_from(["x", *FOUR_BYTE]).map(lambda c: c * max_size),
    )


def invalid_ids(max_size: int) -> st.SearchStrategy[Any]:
    bad = [
        "a/b", "/", ".", "..", " a", "a ", "\ta", "a\n", "\u00a0a", "a\u3000", "a\x00b", "a\x01b", "a\x7f",
        "a\x85b", "a\x9fb", "", None, 7, *(f"a{c}b" for c in BIDI_CONTROLS),
    ]  # fmt: skip
    over = st.sampled_from(["x", *FOUR_BYTE]).map(lambda c: c * (max_size + 1))
    return st.one_of(st.sampled_from(bad), over)


# --- numbers -------------------------------------------------------------------------------------


def ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(low, high), st.sampled_from([low, low + 1, high - 1, high]))


def invalid_ints(low: int, high: int, *, nullable: bool = False) -> st.SearchStrategy[Any]:
    bad: list[Any] = [low - 1, high + 1, 2**64, 10**30, 1.0, 0.5, "1", True]
    if not nullable:
        bad.append(None)
    return st.sampled_from(bad)


_EDGE_FLOATS = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1e308,
    -1e308,
    1.7976931348623157e308,
    0.1,
]


def json_floats() -> st.SearchStrategy[float]:
    return st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(_EDGE_FLOATS))


def confidences() -> st.SearchStrategy[float | int]:
    edges = [0, 1, 0.0, -0.0, 1.0, 5e-324, 0.00005, 0.00004999, 0.99995, 0.99994999, 0.12345]
    return st.one_of(st.floats(0, 1), st.sampled_from(edges))


def expected_confidence(value: float | int) -> float:
    """The DECIMAL(5,4) column's value, as a float: 4 decimals, never -0.0."""
    return round(float(value), 4) + 0.0


# --- timestamps ----------------------------------------------------------------------------------

# Naive on purpose: hypothesis' datetimes() takes naive bounds; these stand for UTC.
_MIN_UTC = dt.datetime(1000, 1, 1)  # noqa: DTZ001
_MAX_UTC = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)  # noqa: DTZ001


@dataclass(frozen=True)
class Stamp:
    text: str  # as sent
    utc: dt.datetime  # as it must be answered (aware UTC, microseconds truncated)

    def answer(self) -> str:
        return orjson.dumps(self.utc, option=orjson.OPT_UTC_Z).decode().strip('"')


@st.composite
def stamps(draw: st.DrawFn) -> Stamp:
    """A timestamp between 1000-01-01 and 9999-12-31 in UTC, written with any offset."""
    utc = draw(st.one_of(st.datetimes(_MIN_UTC, _MAX_UTC), st.sampled_from([_MIN_UTC, _MAX_UTC])))
    minutes = draw(st.one_of(st.integers(-1439, 1439), st.sampled_from([0, -1439, 1439, 60, -330])))
    try:
        local = utc + dt.timedelta(minutes=minutes)
    except OverflowError:
        minutes = -minutes
        local = utc + dt.timedelta(minutes=minutes)
    digits = draw(st.integers(0, 9))
    fraction = f"{local.microsecond:06d}"
    if digits <= 6:
        fraction = fraction[:digits]
        micro = int(fraction.ljust(6, "0")) if digits else 0
    else:
        fraction += draw(st.text("0123456789", min_size=digits - 6, max_size=digits - 6))
        micro = local.microsecond
    if minutes == 0:
        offset = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00"]))
    else:
        sign = "+" if minutes > 0 else "-"
        offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    sep = draw(st.sampled_from(["T", "T", "t", " "]))
    text = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}{sep}"
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
        + (f".{fraction}" if fraction else "")
        + offset
    )
    expected = (local.replace(microsecond=micro) - dt.timedelta(minutes=minutes)).replace(tzinfo=dt.UTC)
    return Stamp(text, expected)


INVALID_STAMPS = [
    "2025-09-30T10:15:30",  # no offset
    "2025-09-30",  # a date
    "1700000000",  # epoch seconds as a string
    1700000000,  # and as a number
    1700000000.5,
    "2025-09-30T10:15Z",  # no seconds
    "2025-09-30T10:15:30+0200",  # offset without colon
    "2025-09-30T10:15:30+02",
    "2025-02-30T10:15:30Z",
    "2025-09-30T24:00:00Z",
    "2025-09-30T10:15:60Z",
    "2025-09-30T10:15:30+24:00",
    "9999-12-31T23:59:59-05:00",  # year 10000 in UTC
    "9999-12-31T23:59:59.999999-00:01",
    "1000-01-01T00:00:00+00:01",  # year 999 in UTC
    "0999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+01:00",
    "10000-01-01T00:00:00Z",
    " 2025-09-30T10:15:30Z",
    "2025-09-30T10:15:30Z ",
    "",
    "yesterday",
    True,
]


# --- free JSON objects ---------------------------------------------------------------------------


def json_depth(value: Any) -> int:
    """Nesting levels: an object or array is 1 plus its deepest child; scalars are 0."""
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


def json_size(value: Any) -> int:
    return len(orjson.dumps(value))


_keys = st.text(_text_char, max_size=8)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints(*INT64),
    st.sampled_from([2**53 + 1, -(2**53) - 1, 2**32, -1]),
    json_floats(),
    st.text(_text_char, max_size=10),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)


def _nest(depth: int, leaf: Any, kinds: list[bool]) -> dict[str, Any]:
    """An object ``depth`` levels deep (itself included), alternating objects and arrays."""
    value = leaf
    for level in range(depth - 1):
        value = {"k": value} if kinds[level % len(kinds)] else [value]
    return {"root": value}


@st.composite
def _deep(draw: st.DrawFn, depth: int) -> dict[str, Any]:
    kinds = draw(st.lists(st.booleans(), min_size=1, max_size=4))
    return _nest(depth, draw(_scalars), kinds)


def _exactly(size: int) -> st.SearchStrategy[dict[str, Any]]:
    """``{"x": "..."}`` serialised to exactly ``size`` bytes (or one over, for 2-byte characters)."""
    overhead = len(b'{"x":""}')
    return st.sampled_from(["a", "é", "😀"]).map(
        lambda c: {"x": c * -(-(size - overhead) // len(c.encode()))}
    )


def free_objects() -> st.SearchStrategy[dict[str, Any] | None]:
    small = st.dictionaries(_keys, _values, max_size=4).filter(
        lambda v: json_depth(v) <= MAX_DEPTH and json_size(v) <= MAX_JSON_BYTES
    )
    wide = st.integers(100, 3000).map(lambda n: {f"k{i}": i for i in range(n)})
    exact = st.sampled_from(["a", "😀"]).map(lambda c: {"x": c * ((MAX_JSON_BYTES - 8) // len(c.encode()))})
    return st.one_of(small, small, st.integers(1, MAX_DEPTH).flatmap(_deep), wide, exact, st.none())


def invalid_free_objects() -> st.SearchStrategy[Any]:
    bad: list[Any] = [
        {"n": 2**63},
        {"n": -(2**63) - 1},
        {"n": 2**64},
        {"n": [10**30]},
        {"k\x00": 1},
        {"a": {"b": ["x\x00"]}},
        [1, 2],
        "text",
        5,
    ]
    return st.one_of(
        st.sampled_from(bad),
        st.integers(MAX_DEPTH + 1, MAX_DEPTH + 30).flatmap(_deep),
        _exactly(MAX_JSON_BYTES + 1),
    )


# --- records -------------------------------------------------------------------------------------


def _session_fields() -> dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any], bool]]:
    """field -> (valid, invalid, optional)."""
    count = (0, 2**31 - 1)
    return {
        "session_id": (
            ids(_length(Session, "session_id")),
            invalid_ids(_length(Session, "session_id")),
            False,
        ),
        "filename": (texts(1, 255), invalid_texts(1, 255), False),
        "file_path": (texts(1, 512), invalid_texts(1, 512), False),
        "status": (
            st.sampled_from(SESSION_STATUSES),
            st.sampled_from(["", "done", "Pending", None, 1]),
            False,
        ),
        "game_info": (free_objects(), invalid_free_objects(), True),
        "llm_provider": (texts(1, 50), invalid_texts(1, 50), False),
        "metadata": (free_objects(), invalid_free_objects(), True),
        **{
            name: (ints(*count), invalid_ints(*count), True)
            for name in ("total_tasks", "completed_tasks", "failed_tasks", "processing_tasks")
        },
    }


def _task_fields() -> dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any], bool]]:
    count = (0, 2**31 - 1)
    return {
        "task_id": (ids(_length(Task, "task_id")), invalid_ids(_length(Task, "task_id")), False),
        "batch_id": (ids(_length(Task, "batch_id")), invalid_ids(_length(Task, "batch_id")), False),
        "sheet_name": (texts(1, 255), invalid_texts(1, 255), False),
        "row_index": (ints(*count), invalid_ints(*count), False),
        "column_name": (texts(1, 255), invalid_texts(1, 255), False),
        "source_text": (texts(0, MAX_TEXT), invalid_texts(0, MAX_TEXT), False),
        "target_text": (st.none() | texts(0, MAX_TEXT), invalid_texts(0, MAX_TEXT, nullable=True), True),
        "context": (st.none() | texts(0, MAX_TEXT), invalid_texts(0, MAX_TEXT, nullable=True), True),
        "status": (st.sampled_from(TASK_STATUSES), st.sampled_from(["cancelled", "", None, 0]), False),
        "confidence": (st.none() | confidences(), st.sampled_from([1.0001, -0.0001, 2, "0.5", True]), True),
        "error_message": (st.none() | texts(0, MAX_TEXT), invalid_texts(0, MAX_TEXT, nullable=True), True),
        "retry_count": (ints(*count), invalid_ints(*count), True),
        "start_time": (st.none() | stamps(), st.sampled_from(INVALID_STAMPS), True),
        "end_time": (st.none() | stamps(), st.sampled_from(INVALID_STAMPS), True),
        "duration_ms": (st.none() | ints(0, 2**63 - 1), invalid_ints(0, 2**63 - 1, nullable=True), True),
    }


@dataclass
class Batch:
    session: dict[str, Any]  # as sent (Stamp objects stand for timestamps)
    tasks: list[dict[str, Any]]
    invalid: tuple[str, int, str] | None  # ("sessions" | "tasks", index, field) of the one bad value


@st.composite
def _record(draw: st.DrawFn, fields: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, (valid, _, optional) in fields.items():
        if optional and draw(st.booleans()) and draw(st.booleans()):
            continue  # omitted: takes its default
        record[name] = draw(valid)
    record.update(fixed)
    return record


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    """One session and 1-3 of its tasks; in about one batch in three, one field holds a bad value."""
    session_fields, task_fields = _session_fields(), _task_fields()
    session = draw(_record(session_fields, {}))
    tasks = draw(
        st.lists(_record(task_fields, {"session_id": session["session_id"]}), min_size=1, max_size=3)
    )
    invalid = None
    if draw(st.integers(0, 2)) == 0:
        if draw(st.booleans()):
            name = draw(st.sampled_from(sorted(session_fields)))
            session[name] = draw(session_fields[name][1])
            invalid = ("sessions", 0, name)
        else:
            index = draw(st.integers(0, len(tasks) - 1))
            name = draw(st.sampled_from(sorted([*task_fields, "session_id"])))
            bad = invalid_ids(_length(Task, "session")) if name == "session_id" else task_fields[name][1]
            tasks[index][name] = draw(bad)
            invalid = ("tasks", index, name)
    return Batch(session, tasks, invalid)
