"""Three SETs and a `set` rule for them, shared by the SET tests and benchmarks/bench_set.py."""

from typing import Any

SETS = ("hz.a.1", "hz.a.2", "hz.b.1")
KEY = "x-user-id"
RULE: dict[str, Any] = {
    "schema": 1,
    "key": KEY,
    "buckets": 1000,
    # Unequal shares, one SET in two ranges: hz.a.1 50%, hz.a.2 30%, hz.b.1 20%.
    "ranges": [
        {"from": 0, "to": 249, "set": "hz.a.1"},
        {"from": 250, "to": 549, "set": "hz.a.2"},
        {"from": 550, "to": 749, "set": "hz.b.1"},
        {"from": 750, "to": 999, "set": "hz.a.1"},
    ],
    "on_empty": "fail",
}
SHARES = {"hz.a.1": 0.5, "hz.a.2": 0.3, "hz.b.1": 0.2}
