"""The README's table of bounds says what csf/bounds.py checks, and the parsers of
rules, instance nodes and @csf.provider check each field against that bound."""

import json
import re
from pathlib import Path

import pytest

import csf
from csf import bounds
from csf.auth import CallerAuth
from csf.bounds import Bound
from csf.config import StubConfig, parse_registry_url
from csf.registry.instance import Instance, InstanceFormatError
from csf.rules import parse_rule

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_bounds() -> dict[str, str]:
    """Each field of the README's Bounds table -> the bounds the table gives it."""
    section = README.read_text().split("### Bounds", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for row in re.findall(r"^\| (`.*?) \| .*? \| (a .*?) \|$", section, re.MULTILINE):
        for field in re.findall(r"`(\w+)`", row[0]):
            table.setdefault(field, row[1])
    return table


# The fields each bound checks, as csf/rules.py, csf/registry/instance.py and
# csf/provider.py use them.
FIELDS: dict[str, Bound] = {
    "error_ratio": bounds.RATIO,
    "slow_ratio": bounds.RATIO,
    "budget_ratio": bounds.RATIO,
    "timeout_ms": bounds.TIMEOUT_MS,
    "slow_call_ms": bounds.SLOW_CALL_MS,
    "max_wait_ms": bounds.MAX_WAIT_MS,
    "window_s": bounds.WINDOW_S,
    "open_s": bounds.WINDOW_S,
    "rate": bounds.RATE,
    "burst": bounds.BURST,
    "min_calls": bounds.CALLS,
    "consumer": bounds.CALLS,
    "provider": bounds.CALLS,
    "executes": bounds.CALLS,
    "half_open_probes": bounds.PROBES,
    "retries": bounds.RETRIES,
    "budget_min_per_s": bounds.PER_SECOND,
    "weight": bounds.WEIGHT,
    "port": bounds.PORT,
    "pid": bounds.PID,
    "start_time": bounds.START_TIME,
    "warmup": bounds.WARMUP_S,
    "timeout": bounds.SECONDS,
    "startup_wait": bounds.SECONDS,
    "grace": bounds.SECONDS,
    "max_skew": bounds.SECONDS,
    "session_timeout": bounds.SESSION_TIMEOUT,
    "buckets": bounds.BUCKETS,
}


def test_the_readme_gives_every_field_the_bounds_csf_checks() -> None:
    table = readme_bounds()
    assert {field: table.get(field) for field in FIELDS} == {
        field: bound.describe() for field, bound in FIELDS.items()
    }


def test_every_bound_of_csf_bounds_is_in_the_table() -> None:
    defined = {value for value in vars(bounds).values() if isinstance(value, Bound)}
    assert defined == set(FIELDS.values())
    assert f"at most {bounds.MAX_ENTRIES:,}\nentries" in README.read_text()


WHERE: dict[str, list[str]] = {
    "breaker": [
        "error_ratio", "slow_ratio", "slow_call_ms", "window_s", "open_s", "min_calls",
        "half_open_probes",
    ],
    "retry": ["budget_ratio", "retries", "budget_min_per_s"],
    "timeout": ["timeout_ms"],
    "ratelimit": ["max_wait_ms", "rate", "burst"],
    "concurrency": ["max_wait_ms", "consumer", "provider"],
    "instance": ["port", "weight", "pid", "start_time", "warmup"],
    "provider": ["weight", "warmup", "executes"],
    "stub": ["timeout", "retries"],
    "method": ["timeout", "retries"],
    "server": ["grace"],
    "auth": ["max_skew"],
    "url": ["session_timeout"],
    "set": ["buckets"],
}  # fmt: skip


def _accepted(where: str, field: str, value: float) -> bool:
    try:
        if where == "instance":
            document = {"schema": 1, "host": "127.0.0.1", "port": 1, field: value}
            Instance.from_json(json.dumps(document).encode())
        elif where == "provider":
            csf.provider(service="XIESR", **{field: value})
        elif where == "stub":
            StubConfig(service="XIESR", **{field: value})
        elif where == "method":
            csf.MethodConfig(**{field: value})
        elif where == "server":
            csf.Server(registry="static://127.0.0.1:1", tenant="T", **{field: value})
        elif where == "auth":
            CallerAuth(secrets={"app": "s" * 16}, max_skew=value)
        elif where == "url":
            parse_registry_url(f"zk://127.0.0.1:2181?session_timeout={value}")
        elif where == "set":
            ranges = [{"from": 0, "to": max(0, int(value) - 1), "set": "hz.a.1"}]
            parse_rule("set", json.dumps({"schema": 1, field: value, "ranges": ranges}).encode())
        else:
            parse_rule(where, json.dumps({"schema": 1, field: value}).encode())
    except (csf.ConfigError, InstanceFormatError):
        return False
    return True


@pytest.mark.parametrize(
    ("where", "field"), [(where, field) for where, fields in WHERE.items() for field in fields]
)
def test_each_field_is_checked_against_the_bound_the_table_gives_it(where: str, field: str) -> None:
    bound = FIELDS[field]
    step = 1 if bound.whole else bound.high / 1e6
    assert _accepted(where, field, bound.low) and _accepted(where, field, bound.high)
    assert not _accepted(where, field, bound.low - step)
    assert not _accepted(where, field, bound.high + step)
