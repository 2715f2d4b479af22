"""SET (cell) names and the `set` rule (DESIGN section 8): which SET a call's key belongs to.

A SET is named `<name>.<area>.<group>`; the group `*` is the area's shared group. The
rule buckets a key (`int(key) % buckets` for a decimal key, else its CRC-32), then maps
bucket ranges to SETs, as AWS cell routers and Alibaba's unitization do:

    {"schema": 1, "key": "x-user-id", "buckets": 1000,
     "ranges": [{"from": 0, "to": 499, "set": "hz.a.1"}, {"from": 500, "to": 999, "set": "hz.a.2"}],
     "on_empty": "fail", "verify": false}

Consumers, providers and the csf-registry CLI parse it with this code, so a rule one of
them accepts every one of them applies the same way.
"""

from __future__ import annotations

import re
import zlib
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, ClassVar

from csf import bounds
from csf._exceptions import ConfigError
from csf._quoted import quoted
from csf._rule_document import RULE_SCHEMA, RuleError, entries, only_keys, rule_document

MAX_BUCKETS = int(bounds.BUCKETS.high)
SET_KEY_METADATA = "csf-set-key"
"""The metadata entry a call's resolved key travels in, hop after hop."""
AREA_GROUP = "*"
ON_EMPTY = ("fail", "area", "center:<set name>")

_PART = "[a-z0-9-]{1,40}"
_SET_NAME = re.compile(rf"({_PART})\.({_PART})\.({_PART}|\*)")
_DECIMAL = re.compile("[0-9]{1,19}")
_METADATA_KEY = re.compile("[a-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True, order=True)
class SetName:
    """A SET: `<name>.<area>.<group>`, each part `[a-z0-9-]+`, the group possibly `*`."""

    name: str
    area: str
    group: str

    @classmethod
    def parse(cls, where: str, value: object, error: type[Exception] = ConfigError) -> SetName:
        """`value` as a SET name; else `error` naming `where` and the form."""
        found = _SET_NAME.fullmatch(value) if isinstance(value, str) else None
        if found is None:
            raise error(
                f"{where}: {quoted(value)} is not a SET name: expected <name>.<area>.<group>, "
                "each part of a-z, 0-9 and '-' (at most 40), the group possibly '*'"
            )
        return cls(*found.groups())

    @property
    def area_group(self) -> SetName:
        """The area's shared group, `<name>.<area>.*`."""
        return SetName(self.name, self.area, AREA_GROUP)

    def __str__(self) -> str:
        return f"{self.name}.{self.area}.{self.group}"


def bucket_of(key: str, buckets: int) -> int:
    """The bucket of `key`: `int(key) % buckets` for a decimal key, else its CRC-32's."""
    if _DECIMAL.fullmatch(key):
        return int(key) % buckets
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % buckets


@dataclass(frozen=True, slots=True)
class BucketRange:
    """Buckets `first`..`last` (inclusive) belong to `set`."""

    first: int
    last: int
    set: SetName

    def to_document(self) -> dict[str, Any]:
        return {"from": self.first, "to": self.last, "set": str(self.set)}


@dataclass(frozen=True)
class SetRule:
    """The `set` rule of a service: its calls stay in the SET their key maps to."""

    KIND: ClassVar[str] = "set"
    buckets: int
    ranges: tuple[BucketRange, ...]
    key: str | None = None
    """The metadata entry a call's key is first found in (an edge service's `x-user-id`)."""
    on_empty: str = "fail"
    verify: bool = False
    _firsts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _center: SetName | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once, read on every call: bisect over the ranges' first buckets.
        object.__setattr__(self, "_firsts", tuple(r.first for r in self.ranges))
        center = self.on_empty.removeprefix("center:")
        object.__setattr__(
            self,
            "_center",
            SetName.parse("set.on_empty", center, RuleError) if center != self.on_empty else None,
        )

    @classmethod
    def parse(cls, data: bytes) -> SetRule:
        document = rule_document("set", data)
        only_keys("set", document, {"schema", "key", "buckets", "ranges", "on_empty", "verify"})
        key = document.get("key")
        if key is not None and (
            not isinstance(key, str) or not _METADATA_KEY.fullmatch(key) or key.endswith("-bin")
        ):
            raise RuleError(
                f"set.key: {quoted(key)} is not a metadata key: expected 1 to 64 of a-z, 0-9, "
                "'_', '.', '-', not ending in '-bin'"
            )
        if "buckets" not in document:
            raise RuleError("set.buckets: missing; expected " + bounds.BUCKETS.describe())
        buckets = bounds.BUCKETS.check_whole("set.buckets", document["buckets"], RuleError)
        on_empty = document.get("on_empty", "fail")
        if not isinstance(on_empty, str) or not (
            on_empty in ("fail", "area") or on_empty.startswith("center:")
        ):
            raise RuleError(
                f"set.on_empty: expected one of {', '.join(map(repr, ON_EMPTY))}, "
                f"got {quoted(on_empty)}"
            )
        verify = document.get("verify", False)
        if not isinstance(verify, bool):
            raise RuleError(f"set.verify: expected true or false, got {quoted(verify)}")
        ranges = _ranges(document.get("ranges"), buckets)
        return cls(buckets, ranges, key, on_empty, verify)

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"schema": RULE_SCHEMA}
        if self.key is not None:
            document["key"] = self.key
        document["buckets"] = self.buckets
        document["ranges"] = [r.to_document() for r in self.ranges]
        document["on_empty"] = self.on_empty
        document["verify"] = self.verify
        return document

    def set_of_bucket(self, bucket: int) -> SetName:
        return self.ranges[bisect_right(self._firsts, bucket) - 1].set

    def which(self, key: str) -> tuple[int, SetName]:
        """The bucket of `key` and the SET that owns it."""
        bucket = bucket_of(key, self.buckets)
        return bucket, self.set_of_bucket(bucket)

    def fallback(self, owner: SetName) -> SetName | None:
        """Where calls of `owner` go when it has no usable provider; None: they fail."""
        if self.on_empty == "area":
            area = owner.area_group
            return area if area != owner else None
        return self._center if self._center != owner else None

    @property
    def sets(self) -> frozenset[SetName]:
        """Every SET a call may go to under this rule, fallbacks included."""
        named = {r.set for r in self.ranges}
        return frozenset(named | {f for s in named if (f := self.fallback(s)) is not None})

    def moved(self, first: int, last: int, to: SetName) -> SetRule:
        """This rule with buckets `first`..`last` given to `to`; RuleError if out of range."""
        if first > last:
            raise RuleError(f"set move: from {first} is after to {last}")
        if not 0 <= first <= last < self.buckets:
            raise RuleError(
                f"set move: buckets {first}..{last} are not within 0..{self.buckets - 1}"
            )
        pieces: list[BucketRange] = []
        for r in self.ranges:
            if r.first < first:
                pieces.append(BucketRange(r.first, min(r.last, first - 1), r.set))
            if r.last > last:
                pieces.append(BucketRange(max(r.first, last + 1), r.last, r.set))
        pieces.append(BucketRange(first, last, to))
        pieces.sort(key=lambda r: r.first)
        merged = [pieces[0]]
        for r in pieces[1:]:
            if r.set == merged[-1].set:
                merged[-1] = BucketRange(merged[-1].first, r.last, r.set)
            else:
                merged.append(r)
        if len(merged) > bounds.MAX_ENTRIES:
            raise RuleError(
                f"set move: the table would have {len(merged)} ranges, at most {bounds.MAX_ENTRIES}"
            )
        return SetRule(self.buckets, tuple(merged), self.key, self.on_empty, self.verify)


def _ranges(value: object, buckets: int) -> tuple[BucketRange, ...]:
    """The ranges of a rule: inclusive, covering 0..buckets-1 exactly once."""
    if not isinstance(value, list) or not value:
        raise RuleError('set.ranges: expected a list of {"from", "to", "set"} objects')
    if len(value) > bounds.MAX_ENTRIES:
        raise RuleError(f"set.ranges: {len(value)} ranges, at most {bounds.MAX_ENTRIES}")
    within = bounds.Bound(0, buckets - 1, whole=True)
    ranges = []
    for index, item in enumerate(value):
        where = f"set.ranges[{index}]"
        entries(where, item, '"from", "to" and "set"')
        only_keys(where, item, {"from", "to", "set"})
        if not {"from", "to", "set"} <= set(item):
            raise RuleError(f'{where}: expected "from", "to" and "set"')
        first = within.check_whole(f"{where}.from", item["from"], RuleError)
        last = within.check_whole(f"{where}.to", item["to"], RuleError)
        if first > last:
            raise RuleError(f"{where}: from {first} is after to {last}")
        ranges.append(
            BucketRange(first, last, SetName.parse(f"{where}.set", item["set"], RuleError))
        )
    ranges.sort(key=lambda r: (r.first, r.last))
    expected = 0
    for r in ranges:
        if r.first < expected:
            raise RuleError(
                f"set.ranges: buckets {r.first}..{min(r.last, expected - 1)} are in two ranges"
            )
        if r.first > expected:
            raise RuleError(f"set.ranges: buckets {expected}..{r.first - 1} are in no range")
        expected = r.last + 1
    if expected != buckets:
        raise RuleError(f"set.ranges: buckets {expected}..{buckets - 1} are in no range")
    return tuple(ranges)
