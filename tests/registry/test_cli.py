"""csf-registry driven as operators drive it, against a real ZooKeeper."""

import asyncio
import base64
import json
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper, free_port
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, greeter_server, wait_until
from tests.registry.conftest import Cli

GREETER_METHODS = {"SayHello", "StreamHellos", "CollectHellos", "Chat"}


def test_export_writes_a_descriptor_whose_protos_parse_back(descriptor: Path) -> None:
    document = json.loads(descriptor.read_text())
    (entry,) = document["services"]
    assert (entry["service"], entry["grpc_service"], entry["version"]) == (
        "XIESR",
        "demo.Greeter",
        "1.0.0",
    )
    kinds = {m["name"]: m["kind"] for m in entry["methods"]}
    assert kinds == {"SayHello": "unary_unary", "StreamHellos": "unary_stream",
                     "CollectHellos": "stream_unary", "Chat": "stream_stream"}  # fmt: skip
    assert {m["input"] for m in entry["methods"]} == {"demo.HelloRequest"}
    files = descriptor_pb2.FileDescriptorSet.FromString(
        base64.b64decode(entry["file_descriptor_set"])
    )
    (service,) = [s for f in files.file for s in f.service]
    assert {m.name for m in service.method} == GREETER_METHODS


def test_import_writes_exactly_the_documented_znodes(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str
) -> None:
    cli("import", str(descriptor))
    base = f"/busidomain/csf/{tenant}/XIESR"
    assert kazoo.get_children(base) == ["services"]
    assert kazoo.get_children(f"{base}/services") == ["demo.Greeter"]
    data, _ = kazoo.get(f"{base}/services/demo.Greeter")
    stored = json.loads(data)
    assert stored["status"] == "registered" and stored["grpc_service"] == "demo.Greeter"
    assert {m["name"] for m in stored["methods"]} == GREETER_METHODS


def test_an_invalid_descriptor_is_refused_and_nothing_is_written(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str
) -> None:
    document = json.loads(descriptor.read_text())
    broken = dict(document["services"][0], grpc_service="demo.Other", service="OTHER")
    document["services"].append(broken)  # its protos do not declare demo.Other
    descriptor.write_text(json.dumps(document))
    result = cli("import", str(descriptor), code=1)
    assert "does not declare demo.Other" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert kazoo.exists(f"/busidomain/csf/{tenant}") is None


def test_the_lifecycle_refuses_illegal_transitions_and_closed_services(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str
) -> None:
    cli("import", str(descriptor))
    path = f"/busidomain/csf/{tenant}/XIESR/services/demo.Greeter"

    def status() -> str:
        return str(json.loads(kazoo.get(path)[0])["status"])

    for illegal in ("open", "close", "offline"):
        assert "needs it to be" in cli(illegal, "XIESR", code=1).stderr
        assert status() == "registered"
    assert "not open" in cli("subscribe", "web", "XIESR", code=1).stderr
    cli("online", "XIESR")
    assert "not open" in cli("subscribe", "web", "XIESR", code=1).stderr
    cli("open", "XIESR", "--grpc-service", "demo.Greeter")
    cli("subscribe", "web", "XIESR")
    assert cli.json("subscriptions", "XIESR") == ["web"]
    assert cli("deregister", "XIESR", code=1).stderr.count("\n") == 1
    cli("offline", "XIESR")
    cli("deregister", "XIESR")
    assert status() == "deregistered"
    cli("unsubscribe", "web", "XIESR")
    assert cli.json("subscriptions", "XIESR") == []
    cli("import", str(descriptor))  # a deregistered service comes back by importing it
    assert status() == "registered"
    cli("online", "XIESR")
    assert status() == "online"
    cli("import", str(descriptor))  # any other status stays
    assert status() == "online"


def test_provider_classes_of_one_service_export_one_descriptor(
    cli: Cli, tmp_path: Path, kazoo: KazooClient, tenant: str
) -> None:
    """Groups normal and gray of one service, two classes: one descriptor, importable."""
    module = tmp_path / "two_groups.py"
    module.write_text(
        "import csf\n"
        "from demo.providers import Greeter\n"
        "@csf.provider(service='XIESR', version='1.0.0', group='normal')\n"
        "class Normal(Greeter): pass\n"
        "@csf.provider(service='XIESR', version='1.0.0', group='gray')\n"
        "class Gray(Greeter): pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        out = tmp_path / "two.json"
        cli("export", "two_groups", "-o", str(out))
    finally:
        sys.path.remove(str(tmp_path))
    (entry,) = json.loads(out.read_text())["services"]
    assert (entry["service"], entry["grpc_service"]) == ("XIESR", "demo.Greeter")
    cli("import", str(out))
    assert kazoo.get_children(f"/busidomain/csf/{tenant}/XIESR/services") == ["demo.Greeter"]
    document = json.loads(out.read_text())
    document["services"].append(document["services"][0])
    out.write_text(json.dumps(document))
    result = cli("import", str(out), code=1)
    assert "demo.Greeter of XIESR appears twice" in result.stderr


async def test_rules_are_validated_before_writing_and_reach_a_running_consumer(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path, cli: Cli
) -> None:
    path = f"/busidomain/csf/{tenant}/XIESR/configs/breaker"
    result = await asyncio.to_thread(
        cli,
        "rule",
        "set",
        "XIESR",
        "breaker",
        "--json",
        '{"schema": 1, "error_ratio": 1.5}',
        code=1,
    )
    assert "breaker.error_ratio" in result.stderr
    assert kazoo.exists(path) is None

    async def fallback(request: Any, error: BaseException) -> Any:
        return greeter_pb2.HelloReply(message="fallback")

    async with (
        greeter_server(zookeeper.url, tenant),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR",
                             fallback={"SayHello": fallback})  # fmt: skip
        assert (await stub.SayHello(greeter_pb2.HelloRequest())).message != "fallback"
        rule = tmp_path / "open.json"
        rule.write_text('{"schema": 1, "force": "open"}')
        await asyncio.to_thread(cli, "rule", "set", "XIESR", "breaker", "--file", str(rule))
        await wait_until(lambda: consumer.rules("XIESR").current["breaker"] is not None, 10)
        assert (await stub.SayHello(greeter_pb2.HelloRequest())).message == "fallback"
        listed = await asyncio.to_thread(cli.json, "rule", "ls", "XIESR")
        assert listed == {"breaker": {"schema": 1, "force": "open"}}
        await asyncio.to_thread(cli, "rule", "rm", "XIESR", "breaker")
        await wait_until(lambda: consumer.rules("XIESR").current["breaker"] is None, 10)
        assert (await stub.SayHello(greeter_pb2.HelloRequest())).message != "fallback"


def _stored_instances(kazoo: KazooClient, tenant: str) -> dict[tuple[str, str], Any]:
    clusters = f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster"
    return {
        (group, address): json.loads(kazoo.get(f"{clusters}/{group}/{address}")[0])
        for group in kazoo.get_children(clusters)
        for address in kazoo.get_children(f"{clusters}/{group}")
    }


async def test_json_of_tree_and_providers_matches_zookeeper(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, cli: Cli, descriptor: Path
) -> None:
    gray = csf.provider(service="XIESR", group="gray", weight=30, tags={"set": "s1"}, warmup=0)(
        type("Gray", (Greeter,), {})
    )
    async with greeter_server(zookeeper.url, tenant), greeter_server(zookeeper.url, tenant, gray):
        await asyncio.to_thread(cli, "import", str(descriptor))
        await asyncio.to_thread(
            cli, "rule", "set", "XIESR", "timeout", "--json", '{"schema": 1, "timeout_ms": 800}'
        )
        asked = time.time()
        providers = await asyncio.to_thread(cli.json, "providers", "XIESR")
        answered = time.time()
        tree = await asyncio.to_thread(cli.json, "tree", "XIESR")
        stored = await asyncio.to_thread(_stored_instances, kazoo, tenant)
    listed = {(p["group"], p["address"]): p for p in providers}
    assert set(listed) == set(stored) and len(stored) == 2
    for key, instance in stored.items():
        shown = listed[key]
        assert (shown["cluster"], shown["weight"], shown["version"], shown["tags"]) == (
            "defaultCluster",
            instance["weight"],
            instance["version"],
            instance["tags"],
        )
        assert shown["services"] == instance["services"]
        # Seconds since the provider's start_time, as of the moment the command ran.
        low, high = (round(t - instance["start_time"], 1) for t in (asked, answered))
        assert low <= shown["uptime_s"] <= high

    def timeless(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in p.items() if k != "uptime_s"} for p in found]

    assert timeless(tree["providers"]) == timeless(providers)
    assert tree["services"] == {"demo.Greeter": "registered"}
    assert tree["rules"] == {"timeout": {"schema": 1, "timeout_ms": 800}}
    assert (tree["tenant"], tree["service"], tree["subscriptions"]) == (tenant, "XIESR", [])


def test_an_unreachable_zookeeper_is_exit_3_and_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "csf.registry.cli", "--zk", f"zk://127.0.0.1:{free_port()}", "ls"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "did not answer" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_are_exit_2(cli: Cli) -> None:
    assert "--zk" in cli("--zk", "http://nowhere", "ls", code=2).stderr
    assert "exactly one of" in cli("rule", "set", "XIESR", "breaker", code=2).stderr


def test_csf_registry_help_works_and_is_an_installed_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "csf.registry.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "csf-registry" in result.stdout and "--tenant" in result.stdout
    scripts = {entry.name: entry.value for entry in entry_points(group="console_scripts")}
    assert scripts.get("csf-registry") == "csf.registry.cli:main"


async def test_watch_prints_changes_as_they_happen(zookeeper: LocalZooKeeper, tenant: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csf.registry.cli", "--zk", zookeeper.url, "--tenant", tenant,
        "--json", "watch", "XIESR",
        stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None

    async def report() -> list[Any]:
        return list(json.loads(await asyncio.wait_for(process.stdout.readline(), 30)))

    try:
        assert await report() == []
        async with greeter_server(zookeeper.url, tenant) as server:
            assert [p["address"] for p in await report()] == [server.address]
        assert await report() == []
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
