"""Any X-Csf-Timeout or X-Csf-Set-Key value gives a bounded value or HttpError 400."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csf.gateway.errors import HttpError
from csf.gateway.headers import MAX_SET_KEY, deadline, set_key

HEADER_TEXT = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-1", "nan", "inf", "1e309", "0.000001", "1_0", " 2 ", "30.5"]),
)


@given(HEADER_TEXT, st.floats(min_value=0.001, max_value=3600))
def test_a_deadline_is_positive_and_never_past_the_maximum(text: str | None, most: float) -> None:
    try:
        seconds = deadline(text, most)
    except HttpError as refused:
        assert refused.status == 400 and "X-Csf-Timeout" in refused.message
        return
    assert math.isfinite(seconds) and 0 < seconds <= most


@given(HEADER_TEXT)
def test_a_set_key_is_short_printable_ascii(text: str | None) -> None:
    try:
        key = set_key(text)
    except HttpError as refused:
        assert refused.status == 400 and "X-Csf-Set-Key" in refused.message
        return
    assert key == text
    assert key is None or (0 < len(key) <= MAX_SET_KEY and key.isascii() and key.isprintable())


def test_the_default_deadline_is_the_maximum_and_a_longer_one_is_cut() -> None:
    assert deadline(None, 30.0) == 30.0
    assert deadline("2.5", 30.0) == 2.5
    assert deadline("90", 30.0) == 30.0
    for bad in ("0", "-1", "nan", "inf", "soon", "9" * 40):
        with pytest.raises(HttpError):
            deadline(bad, 30.0)
