"""csf-registry fuzzed in-process: any arguments, any file, any node another writer left
in ZooKeeper give an exit code of the documented set (0 done, 1 refused, 2 usage, 3
unreachable, 4 open nodes) and never a traceback nor an exception's repr; every refusal
is one line. The commands run against a real ZooKeeper over one shared session (a
session per example would spend the budget on connecting)."""

import json
import random
from collections.abc import Iterator
from pathlib import Path

import kazoo.protocol.connection
import pytest
import typer.main
import typer.testing
from hypothesis import example, given
from hypothesis import strategies as st
from kazoo.client import KazooClient
from typer.testing import CliRunner, Result

import csf.registry.cli as cli_module
from csf.config import ZooKeeperURL
from csf.registry.admin import RegistryAdmin
from csf.registry.cli import app
from csf.registry.descriptors import export
from csf.registry.instance import Instance
from csf.testing.zookeeper import LocalZooKeeper
from tests.strategies import DEEP, encoded, examples, hostile_numbers, json_values, nested

DOCUMENTED_CODES = {0, 1, 2, 3, 4}
TENANT = "Fuzzed"
SERVICE_BASE = f"/busidomain/csf/{TENANT}/XIESR"


@pytest.fixture(scope="module")
def session(
    zookeeper: LocalZooKeeper, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KazooClient]:
    """csf-registry's admin on one started kazoo session (given), with XIESR's
    descriptors imported under TENANT."""
    patch = pytest.MonkeyPatch()
    # kazoo's connection thread draws ping jitter from the global `random` while
    # hypothesis generates examples, which it takes for a strategy using `random`.
    patch.setattr(kazoo.protocol.connection, "random", random.Random())
    # Typer builds the click command anew on every invoke (most of an example's time).
    command = typer.main.get_command(app)
    patch.setattr(typer.testing, "_get_command", lambda typer_app: command)
    client = KazooClient(hosts=zookeeper.hosts)
    client.start(timeout=10)

    class OnOneSession(RegistryAdmin):
        def __init__(self, url: ZooKeeperURL, tenant: str) -> None:
            super().__init__(url, tenant)
            self.client = client

        def __enter__(self) -> RegistryAdmin:
            return self

        def __exit__(self, *exc_info: object) -> None:
            pass

    descriptor = tmp_path_factory.mktemp("fuzz") / "xiesr.json"
    descriptor.write_text(json.dumps(export(["demo.providers"])))
    patch.setattr(cli_module, "RegistryAdmin", OnOneSession)
    result = invoke(zookeeper, "import", str(descriptor))
    assert result.exit_code == 0, result.stderr
    yield client
    client.stop()
    client.close()
    patch.undo()


def invoke(zookeeper: LocalZooKeeper, *args: str) -> Result:
    return CliRunner().invoke(app, ["--zk", zookeeper.url, "--tenant", TENANT, *args])


def assert_documented(result: Result) -> None:
    """A documented exit code, no traceback, and a refusal in one line of our own."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in DOCUMENTED_CODES, result.exit_code
    assert "Traceback" not in result.output and "Error(" not in result.stderr, result.stderr
    if result.exit_code in {1, 3}:
        assert result.stderr.startswith("csf-registry: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr


# -- any arguments -----------------------------------------------------------------------------

# `watch` runs until interrupted and `export` imports whatever module it is named: both
# have their own tests.
COMMANDS = [
    [], ["import"], ["online"], ["open"], ["close"], ["offline"], ["deregister"],
    ["subscribe"], ["unsubscribe"], ["subscriptions"], ["rule"], ["rule", "set"],
    ["rule", "get"], ["rule", "rm"], ["rule", "ls"], ["ls"], ["providers"], ["tree"],
    ["audit"], ["set"], ["set", "show"], ["set", "which"], ["set", "move"], ["nope"],
]  # fmt: skip
OPTIONS = ["--zk", "--tenant", "--digest", "--digest-file", "--json", "--force", "--file",
           "--grpc-service", "-o", "--output", "--help", "--", "-"]  # fmt: skip
VALUES = ["XIESR", "web", "breaker", "timeout", "route", "demo.Greeter", "..", "../..", "/",
          "{}", '{"schema": 1}', '{"schema": 1, "force": "open"}', "zk://127.0.0.1:1",
          "static://127.0.0.1:1", "a:b", "[/x]", "[link=x]y", "TenantA", "/dev/null",
          "/nonexistent/file", "", " ", "\x7f", "é", "0", "999", "-1", "hz.a.1",
          "hz.a.*"]  # fmt: skip
words = st.sampled_from(OPTIONS) | st.sampled_from(VALUES) | st.text(max_size=30)


@pytest.mark.slow  # a fuzz run of many examples: CI runs it, the default suite does not
@given(
    before=st.lists(words, max_size=4),
    command=st.sampled_from(COMMANDS),
    after=st.lists(words, max_size=6),
)
@examples(2000)
@example(before=[], command=["ls"], after=["../../"])
@example(before=["--digest", "x"], command=["ls"], after=[])
@example(before=[], command=["rule", "rm"], after=["XIESR", "nope"])
@example(before=[], command=["rule", "set"], after=["XIESR", "breaker", "--json", "[/x]"])
@example(before=[], command=["tree"], after=["XIESR", "--json"])
@example(before=["--zk", "zk://h1:2181?x"], command=["tree"], after=["XIESR"])
def test_any_arguments_give_a_documented_exit_code_and_no_traceback(
    zookeeper: LocalZooKeeper,
    session: KazooClient,
    before: list[str],
    command: list[str],
    after: list[str],
) -> None:
    assert_documented(invoke(zookeeper, *before, *command, *after))


# -- any file ---------------------------------------------------------------------------------

files = (
    st.binary(max_size=200)
    | json_values(hostile_numbers).map(encoded)
    | st.builds(nested, st.sampled_from([10, 900, DEEP]))
    | st.fixed_dictionaries({"schema": json_values(leaves=2)}, optional={
        "services": json_values(leaves=6), "force": json_values(leaves=2),
        "methods": json_values(leaves=6), "timeout_ms": hostile_numbers,
    }).map(encoded)
)  # fmt: skip


@pytest.fixture(scope="module")
def fuzzed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files") / "fuzzed.json"


@pytest.mark.slow  # a fuzz run of many examples: CI runs it, the default suite does not
@given(data=files, kind=st.sampled_from(["breaker", "timeout", "route", "weight", "bogus"]))
@examples(1000)
@example(data=b'{"schema": 1, "timeout_ms": 800, "methods": {"Nope": {}}}', kind="timeout")
@example(data=nested(DEEP), kind="breaker")
def test_any_file_for_import_or_rule_set_gives_a_documented_exit_code(
    zookeeper: LocalZooKeeper, session: KazooClient, fuzzed_file: Path, data: bytes, kind: str
) -> None:
    fuzzed_file.write_bytes(data)
    imported = invoke(zookeeper, "import", str(fuzzed_file))
    assert_documented(imported)
    assert imported.exit_code in {0, 1}
    ruled = invoke(zookeeper, "rule", "set", "XIESR", kind, "--file", str(fuzzed_file))
    assert_documented(ruled)
    assert ruled.exit_code in {0, 1}


# -- any node another writer left in ZooKeeper ---------------------------------------------

# What ZooKeeper takes in a node name: no '/', no control or private-use characters.
node_names = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xD7FF, exclude_characters="/\x7f")
    .filter(lambda char: not 0x80 <= ord(char) <= 0x9F),
    min_size=1, max_size=16,
).filter(lambda name: name not in {".", ".."})  # fmt: skip
node_data = (
    st.binary(max_size=100)
    | json_values(hostile_numbers).map(encoded)
    | st.builds(nested, st.sampled_from([900, DEEP]))
    | st.builds(
        lambda version, host: Instance(host, 7000, version=version).to_json(),
        st.text(max_size=12),
        st.sampled_from(["10.0.0.1", "[::1]", "h.example"]),
    )
)
VIEWS = [["tree", "XIESR"], ["providers", "XIESR"], ["rule", "ls", "XIESR"],
         ["rule", "get", "XIESR", "timeout"], ["subscriptions", "XIESR"], ["ls", "XIESR"],
         ["online", "XIESR"], ["subscribe", "web", "XIESR"], ["audit"]]  # fmt: skip


@pytest.mark.slow  # a fuzz run of many examples: CI runs it, the default suite does not
@given(
    group=node_names,
    address=node_names,
    instance=node_data,
    rule=node_data,
    descriptor=node_data,
    view=st.sampled_from(VIEWS),
    machine=st.booleans(),
)
@examples(200)
@example(
    group="[bold]g",
    address="[link=x]a:1",
    instance=Instance("10.0.0.1", 7000, version="[/x]").to_json(),
    rule=b'{"schema": 1, "note": "[/x]"}',
    descriptor=b"[1]",
    view=["tree", "XIESR"],
    machine=False,
)
def test_any_node_in_zookeeper_is_shown_or_refused_without_a_traceback(
    zookeeper: LocalZooKeeper,
    session: KazooClient,
    group: str,
    address: str,
    instance: bytes,
    rule: bytes,
    descriptor: bytes,
    view: list[str],
    machine: bool,
) -> None:
    planted = {
        f"{SERVICE_BASE}/clusters/c/{group}/{address}": instance,
        f"{SERVICE_BASE}/configs/timeout": rule,
        f"{SERVICE_BASE}/services/demo.Other": descriptor,
        f"{SERVICE_BASE}/subscriptions/{address}": b"",
    }
    for path, data in planted.items():
        session.ensure_path(path)
        session.set(path, data)
    try:
        result = invoke(zookeeper, *(["--json"] if machine else []), *view)
        assert_documented(result)
        assert result.exit_code in {0, 1, 4}
        if machine and result.exit_code in {0, 4}:
            json.loads(result.stdout)
    finally:
        for path in planted:
            session.delete(path)
