"""translation.validation's rules as functions: the depth definition, timestamps, ids."""

from __future__ import annotations

import datetime as dt

import pytest

from translation.validation import MAX_JSON_DEPTH, check_free_json, check_id, parse_timestamp


def levels(depth: int, innermost: object) -> dict:
    """``depth`` levels: the object itself, then arrays, the last one holding ``innermost``."""
    value = innermost
    for _ in range(depth - 1):
        value = [value]
    return {"k": value} if depth > 1 else {"k": innermost}


@pytest.mark.parametrize("innermost", [1, [], {}])
def test_the_object_itself_is_level_1_and_each_object_or_array_adds_one(innermost):
    containers = 0 if innermost == 1 else 1  # an empty array or object is a level too

    assert check_free_json(levels(MAX_JSON_DEPTH - containers, innermost)) is not None
    with pytest.raises(ValueError, match="levels deep"):
        check_free_json(levels(MAX_JSON_DEPTH - containers + 1, innermost))


def test_a_flat_object_is_one_level():
    assert check_free_json({"a": 1, "b": "x"}) == {"a": 1, "b": "x"}


def test_depth_is_checked_without_recursion():
    value: object = 1
    for _ in range(100_000):
        value = [value]

    with pytest.raises(ValueError, match="levels deep"):
        check_free_json({"k": value})


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), 2**63, -(2**63) - 1, b"x", dt.date(2025, 1, 1)]
)
def test_non_json_or_unstorable_scalars_are_refused(value):
    with pytest.raises(ValueError, match=r"JSON values|NaN|64-bit"):
        check_free_json({"k": [value]})


def test_timestamps_are_converted_to_utc():
    assert parse_timestamp("2025-09-30T10:00:00+05:00") == dt.datetime(2025, 9, 30, 5, tzinfo=dt.UTC)
    assert parse_timestamp("2025-09-30T10:00:00.9999999Z").microsecond == 999_999


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
def test_a_timestamp_overflowing_on_conversion_is_a_value_error_not_an_overflow(value):
    with pytest.raises(ValueError, match="1000 and 9999"):
        parse_timestamp(value)


def test_aware_datetimes_from_python_callers_follow_the_same_rules():
    naive = dt.datetime(2025, 1, 1)  # noqa: DTZ001

    with pytest.raises(ValueError, match="offset"):
        parse_timestamp(naive)
    assert parse_timestamp(naive.replace(tzinfo=dt.UTC)) == naive.replace(tzinfo=dt.UTC)


@pytest.mark.parametrize("value", ["a\u200db", "🏳️‍🌈", "a\ufeffb", "a\u00a0b"])
def test_format_characters_other_than_bidi_controls_are_allowed_in_ids(value):
    # Cf holds the ZWJ of emoji sequences; only the Bidi_Control ones disguise an id.
    assert check_id(value) == value
