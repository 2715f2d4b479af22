"""The `set` rule (DESIGN section 8): its parse, which SET a key maps to, fallbacks, moves,
and every refusal naming its field."""

import json
import re
import zlib
from typing import Any

import pytest

from csf import bounds
from csf.rules import PARSERS, RuleError, parse_rule
from csf.set_rule import BucketRange, SetName, SetRule, bucket_of

DESIGN_EXAMPLE = (
    b'{"schema": 1, "key": "x-user-id", "buckets": 1000,'
    b' "ranges": [{"from": 0, "to": 499, "set": "hz.a.1"},'
    b' {"from": 500, "to": 999, "set": "hz.a.2"}],'
    b' "on_empty": "fail", "verify": false}'
)
A1, A2, A_ALL, CENTER = (SetName.parse("test", n) for n in ("hz.a.1", "hz.a.2", "hz.a.*", "c.x.0"))


def _rule(**body: Any) -> bytes:
    document: dict[str, Any] = {
        "schema": 1,
        "buckets": 10,
        "ranges": [{"from": 0, "to": 4, "set": "hz.a.1"}, {"from": 5, "to": 9, "set": "hz.a.2"}],
    }
    document.update(body)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def test_the_design_example_parses_into_its_fields() -> None:
    rule = SetRule.parse(DESIGN_EXAMPLE)
    assert rule == SetRule(
        buckets=1000,
        ranges=(BucketRange(0, 499, A1), BucketRange(500, 999, A2)),
        key="x-user-id",
        on_empty="fail",
        verify=False,
    )
    assert parse_rule("set", DESIGN_EXAMPLE) == rule and PARSERS["set"] == SetRule.parse
    assert rule.sets == {A1, A2}


def test_defaults_no_key_fail_and_no_verify() -> None:
    rule = SetRule.parse(_rule())
    assert (rule.key, rule.on_empty, rule.verify) == (None, "fail", False)


def test_set_names_split_into_name_area_and_group() -> None:
    assert SetName.parse("s", "hz.a.*") == SetName("hz", "a", "*") == A1.area_group
    assert str(SetName.parse("s", "sh-2.b-1.07")) == "sh-2.b-1.07"
    assert A_ALL.area_group == A_ALL


@pytest.mark.parametrize(
    ("key", "bucket"),
    [("12345", 345), ("0", 0), ("999", 999), ("1000", 0), ("9" * 19, int("9" * 19) % 1000)],
)
def test_a_decimal_key_buckets_by_modulo(key: str, bucket: int) -> None:
    rule = SetRule.parse(DESIGN_EXAMPLE)
    assert rule.which(key) == (bucket, A1 if bucket < 500 else A2)


@pytest.mark.parametrize("key", ["user-42", "9" * 20, "-5", "+5", " 5", "5 ", "١٢", "é", "0x10"])
def test_any_other_key_buckets_by_its_crc32(key: str) -> None:
    bucket = zlib.crc32(key.encode()) % 1000
    assert bucket_of(key, 1000) == bucket
    assert SetRule.parse(DESIGN_EXAMPLE).which(key) == (bucket, A1 if bucket < 500 else A2)


def test_every_bucket_maps_to_the_range_holding_it() -> None:
    rule = SetRule.parse(
        _rule(
            ranges=[
                {"from": 0, "to": 0, "set": "hz.a.1"},
                {"from": 1, "to": 7, "set": "hz.a.2"},
                {"from": 8, "to": 9, "set": "hz.a.1"},
            ]
        )
    )
    assert [str(rule.set_of_bucket(b)) for b in range(10)] == ["hz.a.1"] + ["hz.a.2"] * 7 + [
        "hz.a.1"
    ] * 2


def test_ranges_may_come_in_any_order() -> None:
    rule = SetRule.parse(
        _rule(ranges=[{"from": 5, "to": 9, "set": "hz.a.2"}, {"from": 0, "to": 4, "set": "hz.a.1"}])
    )
    assert rule.ranges == (BucketRange(0, 4, A1), BucketRange(5, 9, A2))


def test_fail_has_no_fallback() -> None:
    rule = SetRule.parse(_rule(on_empty="fail"))
    assert rule.fallback(A1) is None and rule.fallback(A2) is None


def test_area_falls_back_to_the_areas_star_group_except_from_it() -> None:
    rule = SetRule.parse(
        _rule(
            on_empty="area",
            ranges=[{"from": 0, "to": 4, "set": "hz.a.1"}, {"from": 5, "to": 9, "set": "hz.a.*"}],
        )
    )
    assert rule.fallback(A1) == A_ALL
    assert rule.fallback(A_ALL) is None
    assert rule.sets == {A1, A_ALL}


def test_center_falls_back_to_the_named_set_except_from_it() -> None:
    rule = SetRule.parse(_rule(on_empty="center:c.x.0"))
    assert rule.fallback(A1) == CENTER and rule.fallback(A2) == CENTER
    assert rule.fallback(CENTER) is None
    assert rule.sets == {A1, A2, CENTER}


def test_moving_the_middle_of_a_range_splits_it() -> None:
    rule = SetRule.parse(_rule())
    moved = rule.moved(1, 2, A2)
    assert moved.ranges == (
        BucketRange(0, 0, A1),
        BucketRange(1, 2, A2),
        BucketRange(3, 4, A1),
        BucketRange(5, 9, A2),
    )
    assert (moved.buckets, moved.key, moved.on_empty, moved.verify) == (10, None, "fail", False)


def test_moving_across_a_boundary_merges_neighbours_of_one_set() -> None:
    rule = SetRule.parse(_rule())
    assert rule.moved(3, 4, A2).ranges == (BucketRange(0, 2, A1), BucketRange(3, 9, A2))
    assert rule.moved(0, 9, CENTER).ranges == (BucketRange(0, 9, CENTER),)
    assert rule.moved(1, 2, A2).moved(1, 2, A1) == rule


def test_moving_all_but_the_edges_of_a_range_keeps_its_edges() -> None:
    rule = SetRule.parse(_rule())
    assert rule.moved(1, 3, A2).ranges == (
        BucketRange(0, 0, A1),
        BucketRange(1, 3, A2),
        BucketRange(4, 4, A1),
        BucketRange(5, 9, A2),
    )


def test_moving_keeps_the_key_and_policies() -> None:
    rule = SetRule.parse(_rule(key="x-user-id", on_empty="center:c.x.0", verify=True))
    moved = rule.moved(0, 0, A2)
    assert (moved.key, moved.on_empty, moved.verify) == ("x-user-id", "center:c.x.0", True)
    assert moved.fallback(A1) == CENTER


@pytest.mark.parametrize(("first", "last"), [(-1, 3), (0, 10), (10, 10)])
def test_a_move_outside_the_buckets_is_refused(first: int, last: int) -> None:
    with pytest.raises(RuleError, match=r"set move: buckets .* not within 0\.\.9"):
        SetRule.parse(_rule()).moved(first, last, A1)


def test_a_move_from_after_to_is_refused_as_such() -> None:
    with pytest.raises(RuleError, match=r"^set move: from 5 is after to 4$"):
        SetRule.parse(_rule()).moved(5, 4, A1)


def test_a_move_that_would_make_too_many_ranges_is_refused() -> None:
    """1000 ranges, alternating SETs, the last one 999..1999: moving its last bucket
    would make a 1001st."""
    names = ["hz.a.1", "hz.a.2"]
    ranges = [{"from": b, "to": b, "set": names[b % 2]} for b in range(bounds.MAX_ENTRIES)]
    ranges[-1]["to"] = 1999
    rule = SetRule.parse(_rule(buckets=2000, ranges=ranges))
    assert len(rule.moved(0, 0, A2).ranges) == bounds.MAX_ENTRIES - 1
    with pytest.raises(RuleError, match="would have 1001 ranges, at most 1000"):
        rule.moved(1999, 1999, CENTER)


def test_to_document_parses_back_to_the_same_rule() -> None:
    rule = SetRule.parse(DESIGN_EXAMPLE)
    assert rule.to_document() == json.loads(DESIGN_EXAMPLE)
    moved = SetRule.parse(_rule(on_empty="area", verify=True)).moved(2, 6, CENTER)
    assert SetRule.parse(json.dumps(moved.to_document()).encode()) == moved


R = {"from": 0, "to": 9, "set": "hz.a.1"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{nope", "set: not JSON"),
        (b"[]", "set: expected a JSON object"),
        (_rule(schema=2), "set: schema must be 1"),
        (_rule(colour="red"), "set: unknown field 'colour'"),
        (_rule(buckets=...), "set.buckets: missing"),
        (_rule(buckets=0), "set.buckets: expected a whole number from 1 to 100,000, got 0"),
        (_rule(buckets=100_001), "set.buckets: expected a whole number from 1 to 100,000"),
        (_rule(buckets=10.0), "set.buckets: expected a whole number"),
        (_rule(buckets=True), "set.buckets: expected a whole number"),
        (_rule(buckets="10"), "set.buckets: expected a whole number"),
        (_rule(ranges=...), "set.ranges: expected a list"),
        (_rule(ranges=[]), "set.ranges: expected a list"),
        (_rule(ranges={"0": "hz.a.1"}), "set.ranges: expected a list"),
        (_rule(ranges=[R] * 1001), "set.ranges: 1001 ranges, at most 1000"),
        (_rule(ranges=[[0, 9, "hz.a.1"]]), "set.ranges[0]: expected an object"),
        (_rule(ranges=[{**R, "weight": 1}]), "set.ranges[0]: unknown field 'weight'"),
        (_rule(ranges=[{"from": 0, "to": 9}]), 'set.ranges[0]: expected "from", "to" and "set"'),
        (_rule(ranges=[{**R, "from": -1}]), "set.ranges[0].from: expected a whole number from 0"),
        (_rule(ranges=[{**R, "to": 10}]), "set.ranges[0].to: expected a whole number from 0 to 9"),
        (_rule(ranges=[{**R, "to": 9.0}]), "set.ranges[0].to: expected a whole number"),
        (_rule(ranges=[R, {**R, "from": 5, "to": 3}]), "set.ranges[1]: from 5 is after to 3"),
        (
            _rule(ranges=[{**R, "to": 5}, {**R, "from": 5}]),
            "set.ranges: buckets 5..5 are in two ranges",
        ),
        (_rule(ranges=[R, R]), "set.ranges: buckets 0..9 are in two ranges"),
        (_rule(ranges=[{**R, "from": 1}]), "set.ranges: buckets 0..0 are in no range"),
        (_rule(ranges=[{**R, "to": 7}]), "set.ranges: buckets 8..9 are in no range"),
        (
            _rule(ranges=[{**R, "to": 3}, {**R, "from": 6}]),
            "set.ranges: buckets 4..5 are in no range",
        ),
        (_rule(ranges=[{**R, "set": "HZ.a.1"}]), "set.ranges[0].set: 'HZ.a.1' is not a SET name"),
        (_rule(ranges=[{**R, "set": "hz.a"}]), "set.ranges[0].set: 'hz.a' is not a SET name"),
        (_rule(ranges=[{**R, "set": "hz.*.1"}]), "set.ranges[0].set: 'hz.*.1' is not a SET name"),
        (_rule(ranges=[{**R, "set": "hz.a.1.2"}]), "set.ranges[0].set: 'hz.a.1.2' is not a SET"),
        (_rule(ranges=[{**R, "set": "hz..1"}]), "set.ranges[0].set: 'hz..1' is not a SET name"),
        (_rule(ranges=[{**R, "set": "a" * 41 + ".b.c"}]), "set.ranges[0].set: … is not a SET"),
        (_rule(ranges=[{**R, "set": 7}]), "set.ranges[0].set: 7 is not a SET name"),
        (_rule(key=""), "set.key: '' is not a metadata key"),
        (_rule(key="X-User-Id"), "set.key: 'X-User-Id' is not a metadata key"),
        (_rule(key="user id"), "set.key: 'user id' is not a metadata key"),
        (_rule(key="x-user-bin"), "set.key: 'x-user-bin' is not a metadata key"),
        (_rule(key="k" * 65), "set.key: … is not a metadata key"),
        (_rule(key=5), "set.key: 5 is not a metadata key"),
        (_rule(on_empty="closest"), "set.on_empty: expected one of 'fail', 'area'"),
        (_rule(on_empty="Fail"), "set.on_empty: expected one of"),
        (_rule(on_empty=None), "set.on_empty: expected one of"),
        (_rule(on_empty="center:"), "set.on_empty: '' is not a SET name"),
        (_rule(on_empty="center:hz.a"), "set.on_empty: 'hz.a' is not a SET name"),
        (_rule(verify="yes"), "set.verify: expected true or false, got 'yes'"),
        (_rule(verify=1), "set.verify: expected true or false, got 1"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_refused_naming_the_field(data: bytes, reason: str) -> None:
    """`reason` is the message's start, "…" standing for any text."""
    pattern = "^" + ".*".join(map(re.escape, reason.split("…")))
    with pytest.raises(RuleError, match=pattern):
        SetRule.parse(data)
    with pytest.raises(RuleError, match=pattern):
        parse_rule("set", data)


def test_the_bounds_of_buckets_are_accepted() -> None:
    assert SetRule.parse(_rule(buckets=1, ranges=[{**R, "to": 0}])).which("7") == (0, A1)
    top = SetRule.parse(_rule(buckets=100_000, ranges=[{**R, "to": 99_999}]))
    assert top.which("12345678") == (45678, A1)
