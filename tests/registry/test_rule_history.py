"""A rule's history: every write of `configs/<kind>` records its version under
`history/<kind>/<version>` in the same transaction, the last 20 are kept, and a kept
version can be written again (rollback), through the admin code and csf-registry."""

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kazoo.client import KazooClient

from csf.registry.admin import HISTORY_KEPT
from csf.registry.paths import history_path, rule_path
from tests.registry.conftest import Cli
from tests.strategies import examples, hostile_numbers, json_values


def _timeout(ms: int) -> str:
    return json.dumps({"schema": 1, "timeout_ms": ms})


def _version(kazoo: KazooClient, tenant: str, kind: str = "timeout") -> int:
    _, stat = kazoo.get(rule_path(tenant, "XIESR", kind))
    return int(stat.version)


def test_each_write_is_a_version_of_the_history_newest_first(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str
) -> None:
    cli("import", str(descriptor))
    for ms in (100, 200, 300):
        cli("rule", "set", "XIESR", "timeout", "--json", _timeout(ms))
    history = cli.json("rule", "history", "XIESR", "timeout")
    assert [entry["version"] for entry in history] == [2, 1, 0]
    assert [json.loads(entry["rule"])["timeout_ms"] for entry in history] == [300, 200, 100]
    assert _version(kazoo, tenant) == 2, "a version is the rule node's data version"
    assert sorted(kazoo.get_children(history_path(tenant, "XIESR", "timeout"))) == ["0", "1", "2"]
    shown = cli("rule", "history", "XIESR", "timeout").stdout
    assert "timeout_ms" in shown and "set" in shown


def test_only_the_last_twenty_versions_are_kept(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str
) -> None:
    cli("import", str(descriptor))
    for ms in range(1, HISTORY_KEPT + 6):
        cli("rule", "set", "XIESR", "timeout", "--json", _timeout(ms))
    kept = sorted(int(n) for n in kazoo.get_children(history_path(tenant, "XIESR", "timeout")))
    assert kept == list(range(5, HISTORY_KEPT + 5))


def test_a_rollback_writes_an_old_version_again_as_the_newest(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str
) -> None:
    cli("import", str(descriptor))
    for ms in (100, 200):
        cli("rule", "set", "XIESR", "timeout", "--json", _timeout(ms))
    done = cli.json("rule", "rollback", "XIESR", "timeout", "0")
    assert done == {"rolled_back_to": 0, "version": 2}
    assert cli.json("rule", "get", "XIESR", "timeout")["timeout_ms"] == 100
    newest = cli.json("rule", "history", "XIESR", "timeout")[0]
    assert newest["version"] == 2 and newest["note"] == "rollback to 0"
    refused = cli("rule", "rollback", "XIESR", "timeout", "7", code=1)
    assert "no version 7" in refused.stderr
    assert _version(kazoo, tenant) == 2, "a refused rollback wrote nothing"


def test_a_rule_created_again_after_a_delete_starts_its_history_over(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str
) -> None:
    cli("import", str(descriptor))
    for ms in (100, 200):
        cli("rule", "set", "XIESR", "timeout", "--json", _timeout(ms))
    cli("rule", "rm", "XIESR", "timeout")
    assert [e["version"] for e in cli.json("rule", "history", "XIESR", "timeout")] == [1, 0]
    cli("rule", "set", "XIESR", "timeout", "--json", _timeout(900))
    history = cli.json("rule", "history", "XIESR", "timeout")
    assert [(e["version"], json.loads(e["rule"])["timeout_ms"]) for e in history] == [(0, 900)]


def test_a_refused_rule_writes_no_history(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str
) -> None:
    cli("import", str(descriptor))
    cli("rule", "set", "XIESR", "timeout", "--json", _timeout(100))
    cli("rule", "set", "XIESR", "timeout", "--json", '{"schema": 1, "timeout_ms": -1}', code=1)
    assert [e["version"] for e in cli.json("rule", "history", "XIESR", "timeout")] == [0]


def test_garbage_in_the_history_is_skipped_not_a_crash(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str
) -> None:
    cli("import", str(descriptor))
    cli("rule", "set", "XIESR", "timeout", "--json", _timeout(100))
    history = history_path(tenant, "XIESR", "timeout")
    garbage = (("x", b"{}"), ("1", b"\xff\xfe"), ("08", b"[1]"), ("9", b'{"rule": 5}'))
    for name, data in garbage:
        kazoo.create(f"{history}/{name}", data)
    assert [e["version"] for e in cli.json("rule", "history", "XIESR", "timeout")] == [0]
    cli("rule", "set", "XIESR", "timeout", "--json", _timeout(200))
    assert [e["version"] for e in cli.json("rule", "history", "XIESR", "timeout")] == [1, 0]


@settings(examples(40), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.from_regex(r"[0-9a-z]{1,4}", fullmatch=True), data=st.binary(max_size=200)
       | json_values(hostile_numbers, leaves=4).map(lambda v: json.dumps(v).encode()))  # fmt: skip
def test_any_history_node_gives_a_history_or_the_refusal_never_a_crash(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str, name: str, data: bytes
) -> None:
    """Anyone may write under history/: whatever they write, reading it gives the kept
    versions (theirs left out unless it is a version entry) and the next write works."""
    history = history_path(tenant, "XIESR", "timeout")
    if not kazoo.exists(rule_path(tenant, "XIESR", "timeout")):
        cli("import", str(descriptor))
        cli("rule", "set", "XIESR", "timeout", "--json", _timeout(100))
    kazoo.ensure_path(f"{history}/{name}")
    kazoo.set(f"{history}/{name}", data)
    entries = cli.json("rule", "history", "XIESR", "timeout")
    assert all(isinstance(entry["rule"], str) for entry in entries)
    cli("rule", "set", "XIESR", "timeout", "--json", _timeout(200))
    assert cli.json("rule", "history", "XIESR", "timeout")[0]["rule"] == _timeout(200)
