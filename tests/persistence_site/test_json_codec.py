"""core.json_codec.loads: exact integers beyond 64 bits, found by a run of 19 digits."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from core.json_codec import loads


def test_an_integer_beyond_64_bits_is_exact():
    assert loads(b'{"n": 18446744073709551616}') == {"n": 2**64}
    assert loads('{"n": -100000000000000000000}') == {"n": -(10**20)}


def test_a_run_of_18_digits_is_left_to_orjson_and_19_in_a_string_changes_nothing():
    assert loads(b'{"n": 123456789012345678}') == {"n": 123456789012345678}
    assert loads(b'{"s": "1234567890123456789012"}') == {"s": "1234567890123456789012"}


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c, max_size=4)))
def test_loads_reads_what_the_standard_library_reads(value):
    text = json.dumps(value)

    assert loads(text.encode()) == json.loads(text)


@given(st.text(alphabet="0123456789 ab,", max_size=60))
def test_the_digit_run_check_is_the_regular_expression(text):
    from core import json_codec

    raw = text.encode()
    found = json_codec._LONG_DIGITS in raw.translate(json_codec._DIGITS_TO_ZERO)

    assert found == bool(re.search(rb"\d{19}", raw))
