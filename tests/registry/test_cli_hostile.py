"""csf-registry against what another writer may leave in ZooKeeper, and against the typos
and habits of operators: one line and a documented exit code, never a traceback, and a
typo never "succeeds". Real ZooKeeper throughout."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NoAuthError
from kazoo.security import make_digest_acl

from csf.config import parse_registry_url
from csf.registry.admin import RegistryAdmin
from csf.registry.cli import app
from csf.registry.instance import Instance
from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import ROOT
from tests.registry.conftest import Cli
from tests.strategies import DEEP, nested

GREETER_SERVICES = {"demo.Greeter": ("SayHello", "StreamHellos", "CollectHellos", "Chat")}
BREAKER = '{"schema": 1, "force": "open"}'


def base(tenant: str) -> str:
    return f"/busidomain/csf/{tenant}/XIESR"


def plant(kazoo: KazooClient, path: str, data: bytes) -> None:
    kazoo.ensure_path(path)
    kazoo.set(path, data)


def instance(host: str = "10.0.0.1", **fields: Any) -> bytes:
    return Instance(host, 7000, services=GREETER_SERVICES, **fields).to_json()


def one_line(stderr: str) -> str:
    assert stderr.startswith("csf-registry: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and "Error(" not in stderr, stderr
    return stderr


def test_text_from_zookeeper_is_printed_as_it_is_never_as_markup(
    cli: Cli, kazoo: KazooClient, tenant: str
) -> None:
    group = f"{base(tenant)}/clusters/defaultCluster/[bold]g"
    plant(kazoo, f"{group}/10.0.0.1:7000", instance(version="[/x]"))
    plant(kazoo, f"{base(tenant)}/configs/timeout", b'{"schema": 1, "note": "[link=https://e]x"}')
    plant(kazoo, f"{base(tenant)}/subscriptions/[red]web:smile:", b"{}")
    for command in (["providers", "XIESR"], ["tree", "XIESR"], ["rule", "ls", "XIESR"]):
        shown = cli(*command).stdout
        assert "[/x]" in shown or "[link=https://e]x" in shown, shown
    assert "[bold]g" in cli("tree", "XIESR").stdout
    assert "[red]web:smile:" in cli("subscriptions", "XIESR").stdout
    assert "[red]web:smile:" in cli("ls", "XIESR/subscriptions").stdout


def test_nodes_that_are_not_what_csf_writes_are_shown_or_refused_in_one_line(
    cli: Cli, kazoo: KazooClient, tenant: str, descriptor: Path
) -> None:
    group = f"{base(tenant)}/clusters/defaultCluster/normal"
    plant(kazoo, f"{group}/10.0.0.1:7000", instance())
    for address, data in [("a:1", b"[]"), ("b:1", nested(DEEP)), ("c:1", b'{"port": 1e999}')]:
        plant(kazoo, f"{group}/{address}", data)
    plant(kazoo, f"{base(tenant)}/configs/breaker", nested(DEEP))
    plant(kazoo, f"{base(tenant)}/services/demo.Greeter", b"[1]")
    tree = cli.json("tree", "XIESR")
    assert [p["address"] for p in tree["providers"]] == ["10.0.0.1:7000"]
    assert tree["rules"] == {"breaker": None} and tree["services"] == {"demo.Greeter": None}
    assert "10.0.0.1:7000" in cli("tree", "XIESR").stdout
    refused = one_line(cli("online", "XIESR", code=1).stderr)
    assert "services/demo.Greeter holds no valid descriptor" in refused
    cli("import", str(descriptor))  # a re-import repairs it
    assert cli.json("tree", "XIESR")["services"] == {"demo.Greeter": "registered"}


@pytest.mark.parametrize("document", [b"[]", b"null", b'"x"', b"1e999", nested(DEEP)])
def test_an_import_file_that_is_not_a_descriptor_object_is_refused_in_one_line(
    cli: Cli, tmp_path: Path, document: bytes
) -> None:
    file = tmp_path / "d.json"
    file.write_bytes(document)
    assert str(file) in one_line(cli("import", str(file), code=1).stderr)


def test_ls_lists_nodes_of_the_tenant_and_nothing_outside_it(
    cli: Cli, kazoo: KazooClient, tenant: str
) -> None:
    plant(kazoo, f"{base(tenant)}/configs/timeout", b"{}")
    assert cli.json("ls") == ["XIESR"]
    assert cli.json("ls", "XIESR") == ["configs"]
    assert cli.json("ls", f"{base(tenant)}/configs") == ["timeout"]
    for outside in ("../../", "..", "/", "/busidomain/csf", f"XIESR/../../{tenant}x"):
        assert "outside the tenant's node" in one_line(cli("ls", outside, code=1).stderr)


def test_json_output_may_be_asked_for_after_the_command(
    cli: Cli, kazoo: KazooClient, tenant: str
) -> None:
    plant(kazoo, f"{base(tenant)}/clusters/defaultCluster/normal/10.0.0.1:7000", instance())
    for command in (["providers", "XIESR"], ["tree", "XIESR"], ["ls", "XIESR"]):
        after = json.loads(cli(*command, "--json").stdout)
        before = cli.json(*command)
        if command[0] == "ls":
            assert after == before
        else:  # uptime moves on between the two
            assert json.dumps(after)[:40] == json.dumps(before)[:40] and after


def test_tree_and_providers_never_cut_an_address(cli: Cli, kazoo: KazooClient, tenant: str) -> None:
    host = ".".join(["a" * 60] * 3) + ".example"
    address = f"{host}:7000"
    group = f"{base(tenant)}/clusters/defaultCluster/normal"
    plant(kazoo, f"{group}/{address}", instance(host=host))
    for command in ("tree", "providers"):
        lines = cli(command, "XIESR").stdout.splitlines()
        assert any(address in line for line in lines), lines


def test_rule_rm_of_an_unknown_kind_is_refused_naming_the_known_kinds(cli: Cli) -> None:
    refused = one_line(cli("rule", "rm", "XIESR", "braker", code=1).stderr)
    assert "'braker' is not known" in refused and "breaker" in refused


def test_a_rule_for_an_unknown_tenant_service_or_method_is_refused_unless_forced(
    cli: Cli, kazoo: KazooClient, tenant: str, descriptor: Path
) -> None:
    refused = one_line(cli("rule", "set", "XIESR", "breaker", "--json", BREAKER, code=1).stderr)
    assert f"tenant {tenant} does not exist" in refused and "--force" in refused
    assert kazoo.exists(f"/busidomain/csf/{tenant}") is None
    cli("import", str(descriptor))
    refused = one_line(cli("rule", "set", "XIESRX", "breaker", "--json", BREAKER, code=1).stderr)
    assert "XIESRX is not a service of tenant" in refused
    typo = '{"schema": 1, "timeout_ms": 800, "methods": {"SayHelo": {"timeout_ms": 100}}}'
    refused = one_line(cli("rule", "set", "XIESR", "timeout", "--json", typo, code=1).stderr)
    assert "declares no method SayHelo" in refused and "SayHello" in refused
    assert kazoo.exists(f"{base(tenant)}/configs") is None
    cli("rule", "set", "XIESR", "timeout", "--json", typo.replace("SayHelo", "SayHello"))
    cli("rule", "set", "XIESRX", "breaker", "--json", BREAKER, "--force")
    assert kazoo.exists(f"/busidomain/csf/{tenant}/XIESRX/configs/breaker") is not None


def test_methods_declared_by_providers_alone_make_a_rule_valid(
    cli: Cli, kazoo: KazooClient, tenant: str
) -> None:
    plant(kazoo, f"{base(tenant)}/clusters/defaultCluster/normal/10.0.0.1:7000", instance())
    rule = '{"schema": 1, "methods": {"Chat": {"force": "open"}}}'
    cli("rule", "set", "XIESR", "breaker", "--json", rule)
    refused = cli("rule", "set", "XIESR", "breaker", "--json", rule.replace("Chat", "X"), code=1)
    assert "declares no method X" in one_line(refused.stderr)


def test_export_finds_modules_in_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "invapp").mkdir()
    (tmp_path / "invapp" / "__init__.py").write_text("")
    (tmp_path / "invapp" / "providers.py").write_text(
        "import csf\nfrom demo.providers import Greeter\n"
        "@csf.provider(service='INVENTORY', version='2.0.0')\nclass Inventory(Greeter): pass\n"
    )
    script = Path(sys.executable).with_name("csf-registry")
    result = subprocess.run(
        [str(script), "export", "invapp.providers"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # demo lives in the clone only
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)["services"]
    assert (entry["service"], entry["version"]) == ("INVENTORY", "2.0.0")


def test_a_refused_import_names_the_node_zookeeper_refused_not_rolled_back(
    cli: Cli, kazoo: KazooClient, tenant: str, descriptor: Path
) -> None:
    """Another identity owns XIESR: the import of AAA and XIESR writes nothing, and says
    which node was refused and why."""
    kazoo.ensure_path(f"/busidomain/csf/{tenant}")
    kazoo.create(base(tenant), b"", acl=[make_digest_acl("bob", "secret-b", all=True)])
    document = json.loads(descriptor.read_text())
    document["services"].insert(0, dict(document["services"][0], service="AAA"))
    descriptor.write_text(json.dumps(document))
    refused = one_line(cli("import", str(descriptor), code=1).stderr)
    assert f"ZooKeeper refused {base(tenant)}/services" in refused, refused
    assert "RolledBack" not in refused and "digest credentials" in refused
    assert kazoo.get_children(f"/busidomain/csf/{tenant}") == ["XIESR"]


def test_wrong_credentials_are_named_and_never_echoed(
    cli: Cli, kazoo: KazooClient, tenant: str
) -> None:
    cli("--digest", "alice:secret-a", "rule", "set", "XIESR", "breaker", "--json", BREAKER,
        "--force")  # fmt: skip
    refused = one_line(cli("--digest", "alice:wrong-pw", "rule", "ls", "XIESR", code=1).stderr)
    assert f"ZooKeeper refused /busidomain/csf/{tenant}" in refused
    assert "digest credentials do not grant access" in refused and "wrong-pw" not in refused
    refused = one_line(cli("rule", "ls", "XIESR", code=1).stderr)
    assert "needs the tenant's digest credentials" in refused


def test_digest_credentials_come_from_the_environment_or_a_file(
    cli: Cli, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    result = cli.runner.invoke(
        app,
        [*cli.base, "rule", "set", "XIESR", "breaker", "--json", BREAKER, "--force"],
        env={"CSF_ZK_DIGEST": "alice:secret-a"},
    )
    assert result.exit_code == 0, result.stderr
    kazoo.add_auth("digest", "alice:secret-a")
    acls, _ = kazoo.get_acls(f"/busidomain/csf/{tenant}")
    assert acls == [make_digest_acl("alice", "secret-a", all=True)]
    secret = tmp_path / "digest"
    secret.write_text("alice:secret-a\n")
    assert cli.json("--digest-file", str(secret), "rule", "ls", "XIESR") == {
        "breaker": json.loads(BREAKER)
    }
    secret.write_text("only-a-secret-s3cr3t\n")
    refused = one_line(cli("--digest-file", str(secret), "ls", code=2).stderr)
    assert "expected user:password" in refused and "s3cr3t" not in refused
    both = cli("--digest", "a:b", "--digest-file", str(secret), "ls", code=2).stderr
    assert "one of --digest and --digest-file" in one_line(both)


def _poll(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        threading.Event().wait(0.02)


def test_watch_keeps_one_watcher_per_node_however_many_changes(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    group = f"{base(tenant)}/clusters/defaultCluster/normal"
    plant(kazoo, f"{group}/10.0.0.1:7000", instance())
    reports: list[list[dict[str, Any]]] = []
    stop = threading.Event()
    with RegistryAdmin(parse_registry_url(zookeeper.url), tenant) as admin:  # type: ignore[arg-type]
        watcher = threading.Thread(target=admin.watch, args=("XIESR", reports.append, stop))
        watcher.start()
        try:
            _poll(lambda: len(reports) == 1)
            for round_ in range(1, 6):
                address = f"{group}/10.0.0.{round_ + 1}:7000"
                kazoo.create(address, instance(host=f"10.0.0.{round_ + 1}"))
                _poll(lambda round_=round_: len(reports) == 2 * round_)
                kazoo.delete(address)
                _poll(lambda round_=round_: len(reports) == 2 * round_ + 1)
            watchers = {**admin.client._child_watchers, **admin.client._data_watchers}
            assert watchers and all(len(found) == 1 for found in watchers.values()), watchers
        finally:
            stop.set()
            watcher.join(10)
    assert not watcher.is_alive()


def test_any_environment_leaves_no_password_in_an_error(cli: Cli, tmp_path: Path) -> None:
    url = f"{cli.base[1]}?digest=alice:pw-in-url-s3cr3t&x=1"
    result = cli.runner.invoke(app, ["--zk", url, "ls"], env=dict(os.environ))
    assert result.exit_code == 2 and "s3cr3t" not in result.stderr, result.stderr


def test_export_of_two_versions_of_one_service_is_refused_naming_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "two_versions_of_xiesr.py").write_text(
        "import csf\nfrom demo.providers import Greeter\n"
        "@csf.provider(service='XIESR', version='1.0.0')\nclass V1(Greeter): pass\n"
        "@csf.provider(service='XIESR', version='2.0.0', group='gray')\nclass V2(Greeter): pass\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    refused = one_line(cli("export", "two_versions_of_xiesr", code=1).stderr)
    assert "demo.Greeter of XIESR: two provider classes describe it differently" in refused


def test_audit_lists_a_node_it_may_not_read_by_its_own_path(
    cli: Cli, kazoo: KazooClient, tenant: str
) -> None:
    """A node under the tenant that another identity owns is listed as unreadable, by its
    path, and the rest is audited; only the tenant's own node refused is a refusal."""
    alice = ("--digest", "alice:secret-a")
    cli(*alice, "rule", "set", "XIESR", "breaker", "--json", BREAKER, "--force")
    kazoo.add_auth("digest", "alice:secret-a")
    planted = f"{base(tenant)}/configs/planted"
    kazoo.create(planted, b"", acl=[make_digest_acl("bob", "secret-b", all=True)])
    kazoo.create(f"{base(tenant)}/open", b"")  # kazoo's default: open to anyone
    result = cli(*alice, "--json", "audit", code=4)
    assert result.stderr == ""
    found = {node["path"]: node for node in json.loads(result.stdout)}
    assert set(found) == {planted, f"{base(tenant)}/open"}, found
    assert found[planted]["unreadable"] and not found[f"{base(tenant)}/open"]["unreadable"]
    table = cli(*alice, "audit", code=4).stdout
    assert planted in table and "unreadable with these credentials" in table
    refused = one_line(cli("--digest", "bob:secret-b", "audit", code=1).stderr)
    assert f"ZooKeeper refused /busidomain/csf/{tenant}: the digest" in refused, refused


def test_zookeeper_lost_during_a_command_is_unreachable_not_a_refusal(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 3 (unreachable), not 1 (refused): a script may retry a lost connection."""

    def lost(*args: object, **kwargs: object) -> None:
        raise ConnectionLoss()

    monkeypatch.setattr(KazooClient, "get_children", lost)
    lost_line = one_line(cli("ls", code=3).stderr)
    assert "lost ZooKeeper at 127.0.0.1:" in lost_line, lost_line


def test_a_kazoo_error_no_node_was_named_for_names_none(
    cli: Cli, descriptor: Path, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's last resort does not guess a node (it used to blame the tenant's)."""

    def refused(*args: object, **kwargs: object) -> None:
        raise NoAuthError()

    monkeypatch.setattr(KazooClient, "transaction", refused)
    line = one_line(cli("import", str(descriptor), code=1).stderr)
    assert "ZooKeeper refused the operation (NoAuthError)" in line and tenant not in line, line


def test_control_characters_from_zookeeper_reach_the_terminal_escaped(
    cli: Cli, kazoo: KazooClient, tenant: str
) -> None:
    """An escape sequence planted in a node could clear the operator's screen or retitle
    the terminal: it is printed as the text `\\x1b...`, never as the byte."""
    planted = "1.0\x1b[2J\x1b]0;pwned\x07\u202e"
    data = {"schema": 1, "host": "127.0.0.1", "port": 50051, "version": planted}
    kazoo.create(
        f"{base(tenant)}/clusters/defaultCluster/normal/127.0.0.1:50051",
        json.dumps(data).encode(),
        makepath=True,
    )
    for command in ("providers", "tree"):
        shown = cli(command, "XIESR").stdout
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown, command
        assert "1.0\\x1b[2J\\x1b]0;pwned\\x07\\u202e" in shown.replace("\n", ""), shown


def test_a_group_node_the_tenant_may_not_read_hides_no_provider(
    cli: Cli, kazoo: KazooClient, tenant: str
) -> None:
    """Another identity's node beside the real groups (audit lists it) is passed over."""
    cluster = f"{base(tenant)}/clusters/defaultCluster"
    data = {"schema": 1, "host": "127.0.0.1", "port": 50051}
    kazoo.create(f"{cluster}/normal/127.0.0.1:50051", json.dumps(data).encode(), makepath=True)
    kazoo.create(f"{cluster}/planted", b"", acl=[make_digest_acl("bob", "secret-b", all=True)])
    kazoo.create(f"{cluster}/normal/127.0.0.1:1", b"", acl=[make_digest_acl("bob", "b", all=True)])
    found = json.loads(cli("--json", "providers", "XIESR").stdout)
    assert [(p["group"], p["address"]) for p in found] == [("normal", "127.0.0.1:50051")]


def test_a_view_of_a_misspelt_service_is_refused_not_an_empty_table(
    cli: Cli, kazoo: KazooClient, tenant: str
) -> None:
    kazoo.create(f"{base(tenant)}/subscriptions/order-web", makepath=True)
    assert cli("subscriptions", "XIESR").stdout.count("order-web") == 1
    for command in (["providers"], ["tree"], ["subscriptions"], ["rule", "ls"]):
        refused = one_line(cli(*command, "XIESRR", code=1).stderr)
        assert f"XIESRR is not a service of tenant {tenant}" in refused, (command, refused)
