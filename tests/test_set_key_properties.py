"""Any metadata a call carries gives a SET key or none, never an error (csf.set_key)."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from csf.set_key import found_in, sent_with
from csf.set_rule import SET_KEY_METADATA

entry = st.tuples(
    st.sampled_from([SET_KEY_METADATA, "x-user-id", "other"]) | st.text(max_size=8),
    st.text(max_size=20) | st.binary(max_size=20),
)
metadata = st.none() | st.lists(entry, max_size=6).map(tuple)


@given(metadata, st.sampled_from([SET_KEY_METADATA, "x-user-id"]))
def test_a_found_key_is_the_first_non_empty_text_entry(given_metadata: Any, name: str) -> None:
    found = found_in(given_metadata, name)
    texts = [v for k, v in given_metadata or () if k == name and isinstance(v, str) and v]
    assert found == (texts[0] if texts else None)


@given(metadata, st.text(min_size=1, max_size=20))
def test_a_sent_key_never_replaces_one_given_on_the_call(given_metadata: Any, key: str) -> None:
    sent = sent_with(given_metadata, key)
    before = found_in(given_metadata, SET_KEY_METADATA)
    assert found_in(sent, SET_KEY_METADATA) == (before if before is not None else key)
    assert tuple(sent or ())[: len(given_metadata or ())] == tuple(given_metadata or ())
