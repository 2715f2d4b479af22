"""csf-registry set show / which / move, and `rule set` of a set rule, against a real
ZooKeeper: tables and JSON, refusals that leave the rule as it was, the compare-and-set of
a move, and a warning for a SET no provider announces yet."""

import json
import random
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kazoo.protocol.connection
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kazoo.client import KazooClient
from typer.testing import CliRunner

from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry.admin import Refused, RegistryAdmin
from csf.registry.cli import app
from csf.registry.instance import Instance
from csf.set_rule import SetName, SetRule
from csf.testing.zookeeper import LocalZooKeeper
from tests.registry.conftest import Cli
from tests.strategies import examples

RULE = {
    "schema": 1,
    "key": "x-user-id",
    "buckets": 1000,
    "ranges": [{"from": 0, "to": 499, "set": "hz.a.1"}, {"from": 500, "to": 999, "set": "hz.a.2"}],
    "on_empty": "fail",
    "verify": False,
}


def _url(zookeeper: LocalZooKeeper) -> ZooKeeperURL:
    url = parse_registry_url(zookeeper.url)
    assert isinstance(url, ZooKeeperURL)
    return url


def rule_path(tenant: str) -> str:
    return f"/busidomain/csf/{tenant}/XIESR/configs/set"


def announce(kazoo: KazooClient, tenant: str, port: int, set_name: str | None) -> None:
    """A provider's instance node, as csf.Server(set=...) writes it."""
    path = f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster/normal/127.0.0.1:{port}"
    data = Instance("127.0.0.1", port, set=set_name).to_json()
    kazoo.create(path, data, ephemeral=True, makepath=True)


@pytest.fixture
def set_ized(cli: Cli, kazoo: KazooClient, tenant: str) -> str:
    """XIESR with RULE written by the CLI, two providers in hz.a.1, one in hz.a.2 and one
    in no SET; the rule's path."""
    announce(kazoo, tenant, 7001, "hz.a.1")
    announce(kazoo, tenant, 7002, "hz.a.1")
    announce(kazoo, tenant, 7003, "hz.a.2")
    announce(kazoo, tenant, 7004, None)
    result = cli("rule", "set", "XIESR", "set", "--json", json.dumps(RULE))
    assert result.stderr == ""  # every SET it names is announced
    return rule_path(tenant)


def stored(kazoo: KazooClient, path: str) -> tuple[Any, int]:
    data, stat = kazoo.get(path)
    return json.loads(data), stat.version


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of each row of a rich table (its box lines left out)."""
    rows = [line.strip().replace("┃", "│") for line in stdout.splitlines()]
    return [[cell.strip() for cell in row.strip("│").split("│")] for row in rows if row[:1] == "│"]


# -- show ------------------------------------------------------------------------------------


def test_show_gives_each_range_with_its_share_and_providers(
    cli: Cli, set_ized: str, kazoo: KazooClient
) -> None:
    _, version = stored(kazoo, set_ized)
    result = cli("set", "show", "XIESR")
    assert result.stdout.splitlines()[0] == (
        f"XIESR set rule, version {version}: key x-user-id, 1000 buckets, on_empty fail, "
        "verify false"
    )
    assert table_rows(result.stdout) == [
        ["from", "to", "buckets", "SET", "share %", "providers"],
        ["0", "499", "500", "hz.a.1", "50", "2"],
        ["500", "999", "500", "hz.a.2", "50", "1"],
    ]
    view = cli.json("set", "show", "XIESR")
    assert view == {
        "service": "XIESR",
        "version": version,
        "rule": RULE,
        "ranges": [
            {"from": 0, "to": 499, "set": "hz.a.1", "buckets": 500, "share": 50.0,
             "providers": 2, "fallback": None},
            {"from": 500, "to": 999, "set": "hz.a.2", "buckets": 500, "share": 50.0,
             "providers": 1, "fallback": None},
        ],
        "unannounced": [],
    }  # fmt: skip


def test_show_names_the_fallbacks_and_sets_no_provider_announces(
    cli: Cli, set_ized: str, kazoo: KazooClient
) -> None:
    kazoo.set(set_ized, json.dumps({**RULE, "buckets": 3, "on_empty": "area", "ranges": [
        {"from": 0, "to": 0, "set": "hz.a.1"}, {"from": 1, "to": 2, "set": "sh.b.1"},
    ]}).encode())  # fmt: skip
    view = cli.json("set", "show", "XIESR")
    assert [(r["share"], r["providers"], r["fallback"]) for r in view["ranges"]] == [
        (33.333, 2, "hz.a.*"),
        (66.667, 0, "sh.b.*"),
    ]
    assert view["unannounced"] == ["hz.a.*", "sh.b.*", "sh.b.1"]
    assert ["1", "2", "2", "sh.b.1", "66.667", "0"] in table_rows(
        cli("set", "show", "XIESR").stdout
    )


def test_show_of_a_service_with_no_set_rule_is_refused_in_one_line(cli: Cli) -> None:
    result = cli("set", "show", "XIESR", code=1)
    assert result.stderr == "csf-registry: XIESR has no set rule: it is not SET-ized\n"


def test_show_of_a_rule_consumers_refuse_says_why(
    cli: Cli, set_ized: str, kazoo: KazooClient
) -> None:
    kazoo.set(set_ized, json.dumps({**RULE, "buckets": 2000}).encode())
    result = cli("set", "show", "XIESR", code=1)
    assert "holds a rule consumers refuse: set.ranges: buckets 1000..1999 are in no range" in (
        result.stderr
    )
    assert result.stderr.count("\n") == 1


# -- which -----------------------------------------------------------------------------------


def test_which_gives_a_decimal_keys_bucket_and_set(
    cli: Cli, set_ized: str, kazoo: KazooClient
) -> None:
    result = cli("set", "which", "XIESR", "12345")
    assert result.stdout == (
        "XIESR key 12345: bucket 345 of 1000, SET hz.a.1 (with no usable provider there: "
        "the call fails)\n"
    )
    assert cli.json("set", "which", "XIESR", "700") == {
        "service": "XIESR", "key": "700", "bucket": 700, "buckets": 1000, "set": "hz.a.2",
        "on_empty": "fail", "fallback": None, "version": stored(kazoo, set_ized)[1],
    }  # fmt: skip


def test_which_gives_any_other_keys_crc32_bucket(cli: Cli, set_ized: str) -> None:
    bucket = zlib.crc32(b"user-42") % 1000
    found = cli.json("set", "which", "XIESR", "user-42")
    assert (found["bucket"], found["set"]) == (bucket, "hz.a.1" if bucket < 500 else "hz.a.2")


@pytest.mark.parametrize(
    ("on_empty", "fallback"), [("area", "hz.a.*"), ("center:bj.c.0", "bj.c.0")]
)
def test_which_names_the_fallback_the_rule_gives(
    cli: Cli, set_ized: str, kazoo: KazooClient, on_empty: str, fallback: str
) -> None:
    kazoo.set(set_ized, json.dumps({**RULE, "on_empty": on_empty}).encode())
    assert cli.json("set", "which", "XIESR", "1")["fallback"] == fallback
    assert cli("set", "which", "XIESR", "1").stdout.endswith(
        f"(with no usable provider there: SET {fallback})\n"
    )


def test_which_refuses_an_empty_key_and_a_service_with_no_rule(cli: Cli, set_ized: str) -> None:
    assert "empty key" in cli("set", "which", "XIESR", "", code=1).stderr
    assert "OTHER has no set rule" in cli("set", "which", "OTHER", "1", code=1).stderr


# -- move ------------------------------------------------------------------------------------


def test_move_writes_one_new_version_and_prints_the_new_table(
    cli: Cli, set_ized: str, kazoo: KazooClient
) -> None:
    _, before = stored(kazoo, set_ized)
    result = cli("set", "move", "XIESR", "400", "599", "hz.a.2")
    document, version = stored(kazoo, set_ized)
    assert version == before + 1  # written once
    assert document["ranges"] == [
        {"from": 0, "to": 399, "set": "hz.a.1"},
        {"from": 400, "to": 999, "set": "hz.a.2"},
    ]
    assert {k: v for k, v in document.items() if k != "ranges"} == {
        k: v for k, v in RULE.items() if k != "ranges"
    }
    assert table_rows(result.stdout)[1:] == [
        ["0", "399", "400", "hz.a.1", "40", "2"],
        ["400", "999", "600", "hz.a.2", "60", "1"],
    ]
    assert result.stdout.splitlines()[-1] == (
        f"buckets 400..599 now belong to hz.a.2: rule version {version}"
    )
    assert result.stderr == ""
    assert cli.json("set", "which", "XIESR", "12450")["set"] == "hz.a.2"


def test_move_in_json_gives_the_new_rule_and_version(
    cli: Cli, set_ized: str, kazoo: KazooClient
) -> None:
    view = cli.json("set", "move", "XIESR", "0", "0", "hz.a.2")
    document, version = stored(kazoo, set_ized)
    assert (view["rule"], view["version"]) == (document, version)
    assert view["moved"] == {"from": 0, "to": 0, "set": "hz.a.2"}
    assert SetRule.parse(json.dumps(view["rule"]).encode()).which("0") == (
        0,
        SetName("hz", "a", "2"),
    )


def test_moving_to_a_set_no_provider_announces_is_done_with_a_warning(
    cli: Cli, set_ized: str, kazoo: KazooClient
) -> None:
    result = cli("set", "move", "XIESR", "900", "999", "hz.b.1")
    assert result.stderr == (
        "csf-registry: warning: no provider of XIESR announces SET hz.b.1 yet: calls routed "
        "there find no provider until one does\n"
    )
    assert stored(kazoo, set_ized)[0]["ranges"][-1] == {"from": 900, "to": 999, "set": "hz.b.1"}
    announce(kazoo, set_ized.split("/")[3], 7005, "hz.b.1")
    assert cli("set", "move", "XIESR", "800", "999", "hz.b.1").stderr == ""


@pytest.mark.parametrize(
    ("args", "code", "reason"),
    [
        (["0", "1000", "hz.a.1"], 1, "set move: buckets 0..1000 are not within 0..999"),
        (["5", "3", "hz.a.1"], 1, "set move: from 5 is after to 3"),
        (["1000", "1000", "hz.a.1"], 1, "are not within 0..999"),
        (["0", "1", "HZ.a.1"], 1, "set move: SET: 'HZ.a.1' is not a SET name"),
        (["0", "1", "hz.a"], 1, "set move: SET: 'hz.a' is not a SET name"),
        (["0", "1", "hz.*.1"], 1, "is not a SET name"),
        (["0", "1", ""], 1, "set move: SET: '' is not a SET name"),
        (["x", "1", "hz.a.1"], 2, "Invalid value for 'FROM'"),
        (["0", "1.5", "hz.a.1"], 2, "Invalid value for 'TO'"),
        (["-1", "1", "hz.a.1"], 2, "No such option: -1"),
        (["0", "1"], 2, "Missing argument 'SET'"),
    ],
)
def test_a_bad_move_is_refused_and_the_rule_is_unchanged(
    cli: Cli, set_ized: str, kazoo: KazooClient, args: list[str], code: int, reason: str
) -> None:
    before = stored(kazoo, set_ized)
    result = cli("set", "move", "XIESR", *args, code=code)
    assert reason in result.stderr and "Traceback" not in result.stderr
    if code == 1:
        assert result.stderr.startswith("csf-registry: ") and result.stderr.count("\n") == 1
    assert stored(kazoo, set_ized) == before


def test_moving_buckets_of_a_service_with_no_rule_is_refused(cli: Cli) -> None:
    assert "XIESR has no set rule" in cli("set", "move", "XIESR", "0", "1", "hz.a.1", code=1).stderr


def test_a_concurrent_edit_between_read_and_write_is_refused_not_lost(
    zookeeper: LocalZooKeeper,
    tenant: str,
    set_ized: str,
    kazoo: KazooClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another operator writes the rule after the move read it: the move writes nothing."""
    theirs = json.dumps({**RULE, "on_empty": "area"}).encode()
    with RegistryAdmin(_url(zookeeper), tenant) as admin:
        read = admin.set_rule_of

        def read_then_someone_writes(service: str) -> tuple[SetRule, int]:
            found = read(service)
            kazoo.set(set_ized, theirs)
            return found

        monkeypatch.setattr(admin, "set_rule_of", read_then_someone_writes)
        with pytest.raises(Refused, match=r"changed since it was read .* nothing was written"):
            admin.move_buckets("XIESR", 0, 9, SetName("hz", "a", "2"))
    assert kazoo.get(set_ized)[0] == theirs


def test_the_admin_move_returns_the_rule_and_version_it_wrote(
    zookeeper: LocalZooKeeper, tenant: str, set_ized: str, kazoo: KazooClient
) -> None:
    with RegistryAdmin(_url(zookeeper), tenant) as admin:
        rule, version = admin.set_rule_of("XIESR")
        moved, written = admin.move_buckets("XIESR", 0, 9, SetName("hz", "a", "2"))
    assert moved == rule.moved(0, 9, SetName("hz", "a", "2"))
    assert (SetRule.parse(kazoo.get(set_ized)[0]), written) == (moved, version + 1)


# -- rule set of a set rule ------------------------------------------------------------------


def _with_ranges(*ranges: tuple[int, int, str], **body: Any) -> str:
    return json.dumps({
        **RULE, **body, "ranges": [{"from": f, "to": t, "set": s} for f, t, s in ranges],
    })  # fmt: skip


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (_with_ranges((0, 500, "hz.a.1"), (500, 999, "hz.a.2")), "buckets 500..500 are in two"),
        (_with_ranges((0, 400, "hz.a.1"), (500, 999, "hz.a.2")), "buckets 401..499 are in no"),
        (_with_ranges((0, 999, "Hz.a.1")), "set.ranges[0].set: 'Hz.a.1' is not a SET name"),
        (_with_ranges((0, 99, "hz.a.1"), buckets=100_001), "set.buckets: expected a whole"),
        (_with_ranges((0, 0, "hz.a.1"), buckets=0), "set.buckets: expected a whole number"),
        (_with_ranges((0, 999, "hz.a.1"), on_empty="nearest"), "set.on_empty: expected one"),
        (_with_ranges((0, 999, "hz.a.1"), zone="x"), "set: unknown field 'zone'"),
    ],
)
def test_rule_set_of_a_bad_set_rule_is_refused_and_the_rule_is_unchanged(
    cli: Cli, set_ized: str, kazoo: KazooClient, tmp_path: Path, document: str, reason: str
) -> None:
    before = stored(kazoo, set_ized)
    file = tmp_path / "set.json"
    file.write_text(document)
    result = cli("rule", "set", "XIESR", "set", "--file", str(file), code=1)
    assert reason in result.stderr and result.stderr.count("\n") == 1
    assert stored(kazoo, set_ized) == before


def test_rule_set_naming_a_set_no_provider_announces_warns(
    cli: Cli, set_ized: str, kazoo: KazooClient
) -> None:
    document = _with_ranges((0, 499, "hz.a.1"), (500, 999, "sh.b.1"), on_empty="center:bj.c.0")
    result = cli("rule", "set", "XIESR", "set", "--json", document)
    assert result.stderr == (
        "csf-registry: warning: no provider of XIESR announces SET bj.c.0, sh.b.1 yet: "
        "calls routed there find no provider until one does\n"
    )
    assert stored(kazoo, set_ized)[0] == json.loads(document)


def test_providers_show_the_set_they_announce(cli: Cli, set_ized: str) -> None:
    found = {p["address"]: p["set"] for p in cli.json("providers", "XIESR")}
    assert found == {"127.0.0.1:7001": "hz.a.1", "127.0.0.1:7002": "hz.a.1",
                     "127.0.0.1:7003": "hz.a.2", "127.0.0.1:7004": None}  # fmt: skip


# -- any arguments of which and move ---------------------------------------------------------

FUZZED = "SetFuzzed"


@pytest.fixture(scope="module")
def fuzzed_rule(zookeeper: LocalZooKeeper) -> Iterator[str]:
    """RULE under tenant FUZZED, written directly."""
    patch = pytest.MonkeyPatch()
    # kazoo's ping jitter draws from the global `random`, which hypothesis watches.
    patch.setattr(kazoo.protocol.connection, "random", random.Random())
    client = KazooClient(hosts=zookeeper.hosts)
    client.start(timeout=10)
    client.create(rule_path(FUZZED), json.dumps(RULE).encode(), makepath=True)
    yield rule_path(FUZZED)
    # What is under the tenant: the shared parent above it may allow no delete (SHARED_ACL).
    client.delete(f"/busidomain/csf/{FUZZED}/XIESR", recursive=True)
    client.stop()
    client.close()
    patch.undo()


words = (
    st.text(max_size=12)
    | st.integers(-2, 1001).map(str)
    | st.sampled_from(["hz.a.1", "hz.a.*", "HZ.a.1", "--json", "--", "-", "\x1b[2J", "9" * 30])
)


@given(command=st.sampled_from(["which", "move"]), args=st.lists(words, max_size=4))
@examples(60)
@example(command="move", args=["0", "999", "hz.a.1"])
@example(command="which", args=["\x1b[2J"])
@example(command="move", args=["0", "9" * 5000, "hz.a.1"])
def test_any_arguments_of_which_and_move_give_0_1_or_2_and_no_traceback(
    zookeeper: LocalZooKeeper, fuzzed_rule: str, command: str, args: list[str]
) -> None:
    result = CliRunner().invoke(
        app, ["--zk", zookeeper.url, "--tenant", FUZZED, "set", command, "XIESR", *args]
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in {0, 1, 2}, result.stderr
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        assert result.stderr.startswith("csf-registry: ") and result.stderr.count("\n") == 1
    if result.exit_code == 0 and command == "which":
        if result.stdout.startswith("{"):  # --json
            assert json.loads(result.stdout)["service"] == "XIESR"
        else:
            assert result.stdout.count("\n") == 1 and "\x1b" not in result.stdout
