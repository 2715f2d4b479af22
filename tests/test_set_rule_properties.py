"""The `set` rule as properties: any bytes and any JSON give a SetRule or a RuleError; a
valid rule covers every bucket exactly once and sends every key to one of them; a move
gives exactly the moved buckets to their new SET; a rule's document parses back to it."""

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from csf.rules import RuleError
from csf.set_rule import MAX_BUCKETS, SetName, SetRule
from tests.strategies import (
    DEEP,
    encoded,
    examples,
    hostile_numbers,
    json_values,
    nested,
    set_names,
    set_rules,
)


def _parsed(data: bytes) -> SetRule | None:
    """The rule, or None for a RuleError; any other exception fails the property."""
    try:
        return SetRule.parse(data)
    except RuleError as error:
        assert str(error).startswith("set"), error
        return None


def _assert_covers_every_bucket_once(rule: SetRule) -> None:
    assert 1 <= rule.buckets <= MAX_BUCKETS
    expected = 0
    for bucket_range in rule.ranges:
        assert bucket_range.first == expected <= bucket_range.last
        expected = bucket_range.last + 1
    assert expected == rule.buckets


def _probes(rule: SetRule, *more: int) -> list[int]:
    """Every bucket of a small rule; of a large one, those at and around each edge."""
    if rule.buckets <= 1000:
        return list(range(rule.buckets))
    edges = {e for r in rule.ranges for e in (r.first, r.last)} | set(more)
    near = {b + d for b in edges for d in (-1, 0, 1)}
    return sorted(b for b in near if 0 <= b < rule.buckets)


# Near-valid documents: the right keys, any values, so that the checks past the first
# ones are reached too.
near_rules = st.fixed_dictionaries(
    {"schema": st.just(1) | json_values(leaves=1)},
    optional={
        "key": st.sampled_from(["x-user-id", "X", "a-bin", ""]) | json_values(leaves=2),
        "buckets": st.integers(-2, 12) | hostile_numbers | json_values(leaves=1),
        "ranges": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "from": st.integers(-1, 12) | json_values(hostile_numbers, leaves=1),
                    "to": st.integers(-1, 12) | json_values(hostile_numbers, leaves=1),
                    "set": set_names().map(str) | json_values(leaves=1),
                    "extra": json_values(leaves=1),
                },
            ),
            max_size=5,
        )
        | json_values(leaves=3),
        "on_empty": st.sampled_from(["fail", "area", "center:c.x.0", "center:", "center:x"])
        | json_values(leaves=1),
        "verify": st.booleans() | json_values(leaves=1),
    },
)


@given(
    data=st.binary(max_size=300)
    | json_values(hostile_numbers).map(encoded)
    | near_rules.map(encoded)
    | set_rules().map(lambda rule: encoded(rule.to_document()))
)
@examples(1000)
@example(data=nested(DEEP))
@example(data=b'{"schema": 1, "buckets": 1, "ranges": [{"from": 0, "to": 0, "set": "a.b.*"}]}')
@example(data=b'{"schema": 1, "buckets": 1e400, "ranges": []}')
@example(data=b'{"schema": 1, "buckets": 2, "ranges": [{"from": NaN, "to": 1, "set": "a.b.c"}]}')
@example(
    data=b'{"schema": 1, "buckets": 1, "ranges": [{"from": 0, "to": 0, "set": "a.b.\\ud800"}]}'
)
def test_any_bytes_give_a_set_rule_or_a_rule_error(data: bytes) -> None:
    rule = _parsed(data)
    if rule is not None:
        _assert_covers_every_bucket_once(rule)


@given(rule=set_rules(), keys=st.lists(st.text(max_size=30) | st.integers(0, 10**25).map(str)))
@examples(300)
def test_a_valid_rule_maps_every_bucket_and_key_to_exactly_one_range(
    rule: SetRule, keys: list[str]
) -> None:
    _assert_covers_every_bucket_once(rule)
    for bucket in _probes(rule):
        (owner,) = [r for r in rule.ranges if r.first <= bucket <= r.last]
        assert rule.set_of_bucket(bucket) == owner.set
    for key in keys:
        bucket, owner_set = rule.which(key)
        assert 0 <= bucket < rule.buckets
        assert owner_set == rule.set_of_bucket(bucket)


@st.composite
def moves(draw: st.DrawFn) -> tuple[SetRule, int, int, SetName]:
    rule = draw(set_rules())
    first = draw(st.integers(0, rule.buckets - 1))
    last = draw(st.integers(first, rule.buckets - 1))
    names = sorted({r.set for r in rule.ranges})
    return rule, first, last, draw(st.sampled_from(names) | set_names())


@given(move=moves())
@examples(300)
def test_a_move_gives_the_moved_buckets_and_no_others_to_the_target(
    move: tuple[SetRule, int, int, SetName],
) -> None:
    rule, first, last, target = move
    moved = rule.moved(first, last, target)
    _assert_covers_every_bucket_once(moved)
    for bucket in _probes(rule, first, last):
        expected = target if first <= bucket <= last else rule.set_of_bucket(bucket)
        assert moved.set_of_bucket(bucket) == expected
    # Neighbours of one SET are one range: a move leaves the table no longer than needed.
    assert all(a.set != b.set for a, b in zip(moved.ranges, moved.ranges[1:], strict=False))
    assert (moved.buckets, moved.key, moved.on_empty, moved.verify) == (
        rule.buckets,
        rule.key,
        rule.on_empty,
        rule.verify,
    )
    assert SetRule.parse(json.dumps(moved.to_document()).encode()) == moved


@given(rule=set_rules())
@examples(300)
def test_a_rules_document_parses_back_to_the_same_rule(rule: SetRule) -> None:
    document: Any = rule.to_document()
    assert SetRule.parse(json.dumps(document).encode()) == rule
    assert SetRule.parse(json.dumps(document).encode()).to_document() == document
