"""Hypothesis strategies for data from outside (znodes, rules, files, URLs, metadata):
JSON of every shape, including the numbers and nesting a hostile writer would send."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

# The largest integer a float holds exactly; balancers and clocks compute with floats.
EXACT = 2**53
# An integer of hundreds of digits: a valid JSON number, too large for any float.
HUGE = 10**400
# Deeper than Python's recursion limit: json.loads gives up on it.
DEEP = 30_000


def examples(count: int) -> settings:
    """A property's settings: `count` examples, no deadline (this machine is noisy), and
    no example database written into the repository."""
    return settings(max_examples=count, deadline=None, database=None)


long_strings = st.builds(lambda char, count: char * count, st.characters(), st.integers(0, 5_000))
# Tame numbers: what a careless writer sends. Hostile numbers: what an attacker sends.
tame_numbers = st.integers(-EXACT, EXACT) | st.floats(allow_nan=False, allow_infinity=False)
hostile_numbers = st.one_of(
    st.sampled_from([HUGE, -HUGE, 2**64, 5e-324, 1e308, math.nan, math.inf, -math.inf]),
    st.integers(min_value=10**300, max_value=10**500),
    st.floats(),
)


def json_values(
    numbers: st.SearchStrategy[Any] = tame_numbers, leaves: int = 12
) -> st.SearchStrategy[Any]:
    """Any JSON value (a few levels deep, at most `leaves` scalars) whose numbers come
    from `numbers`."""
    scalars = st.none() | st.booleans() | numbers | st.text(max_size=20) | long_strings
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=leaves,
    )


def encoded(document: Any) -> bytes:
    """JSON as Python writes it: NaN and Infinity included, integers of any size."""
    return json.dumps(document).encode()


def nested(depth: int, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """Valid JSON `depth` arrays deep, inside `prefix`/`suffix`."""
    return prefix + b"[" * depth + b"]" * depth + suffix


# -- SET routing (csf.set_rule) -------------------------------------------------------------

_set_parts = st.sampled_from(["hz", "sh", "a", "b", "1", "2"]) | st.text(
    "abz09-", min_size=1, max_size=40
)


def set_names() -> st.SearchStrategy[Any]:
    """Valid SET names (csf.set_rule.SetName), often the same few."""
    from csf.set_rule import SetName

    return st.builds(SetName, _set_parts, _set_parts, _set_parts | st.just("*"))


@st.composite
def set_rules(draw: st.DrawFn) -> Any:
    """Valid `set` rules (csf.set_rule.SetRule): ranges cut anywhere, neighbours possibly
    of one SET, every policy; now and then the largest number of buckets."""
    from csf.set_rule import MAX_BUCKETS, BucketRange, SetRule

    # One rule in twenty has the most buckets (a branch of `|` would be half of them).
    buckets = MAX_BUCKETS if draw(st.integers(0, 19)) == 0 else draw(st.integers(1, 300))
    cuts = sorted(draw(st.sets(st.integers(1, buckets - 1), max_size=12)) if buckets > 1 else [])
    names = draw(st.lists(set_names(), min_size=1, max_size=4))
    starts = [0, *cuts]
    ends = [*(cut - 1 for cut in cuts), buckets - 1]
    ranges = tuple(
        BucketRange(first, last, draw(st.sampled_from(names)))
        for first, last in zip(starts, ends, strict=True)
    )
    key = draw(st.none() | st.sampled_from(["x-user-id", "uid", "a.b_c-1"]))
    on_empty = draw(
        st.sampled_from(["fail", "area"]) | set_names().map(lambda name: f"center:{name}")
    )
    return SetRule(buckets, ranges, key, on_empty, draw(st.booleans()))
