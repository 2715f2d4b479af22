"""uvloop is an opt-in: importing CSF leaves asyncio's loop policy alone, and a provider and
a consumer run on uvloop's loop when the application starts one (`uvloop.run(main())`)."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from kazoo.client import KazooClient

from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import ROOT, TEST_LOOP, consumer_for, greeter_server, instance_path

uvloop = pytest.importorskip("uvloop", reason="the uvloop extra: pip install -e '.[uvloop]'")

Request = greeter_pb2.HelloRequest

# Imports every module of csf with uvloop installed, then reports the loop policy and the
# loop asyncio.run makes. Run in a fresh interpreter: pytest's own may have set a policy.
IMPORT_ALL = """
import asyncio, importlib, pkgutil
import uvloop
import csf
for module in pkgutil.walk_packages(csf.__path__, "csf."):
    importlib.import_module(module.name)
async def loop_type():
    return type(asyncio.get_running_loop()).__module__
print(type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy)
print(asyncio.run(loop_type()))
"""


def test_importing_csf_leaves_the_event_loop_policy_alone() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "asyncio.unix_events"]


async def test_async_tests_run_on_the_loop_csf_test_loop_names() -> None:
    expected = uvloop.Loop if TEST_LOOP == "uvloop" else asyncio.SelectorEventLoop
    assert type(asyncio.get_running_loop()) is expected


async def _four_calls(registry: str, tenant: str, snapshot_dir: Path) -> list[object]:
    """Serve the Greeter and call it once of each kind; returns the loop and the answers."""
    async with (
        greeter_server(registry, tenant) as server,
        consumer_for(registry, tenant, snapshot_dir) as client,
    ):
        stub = client.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        unary = await stub.SayHello(Request(name="ann"))
        streamed = [r.message async for r in stub.StreamHellos(Request(name="bob", count=2))]

        async def names() -> AsyncIterator[greeter_pb2.HelloRequest]:
            for name in ("a", "b"):
                yield Request(name=name)

        collected = await stub.CollectHellos(names())
        chat = stub.Chat()
        chatted = []
        for name in ("x", "y"):
            await chat.write(Request(name=name))
            chatted.append((await chat.read()).message)
        await chat.done_writing()
        assert await chat.read() is grpc.aio.EOF
        return [
            asyncio.get_running_loop(),
            (unary.message, unary.served_by == server.address),
            streamed,
            collected.message,
            chatted,
            await chat.code(),
        ]


def test_a_provider_and_a_consumer_answer_every_call_kind_inside_uvloop_run(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    loop, *answers = uvloop.run(_four_calls(zookeeper.url, tenant, tmp_path))
    assert isinstance(loop, uvloop.Loop)
    assert answers == [
        ("hi ann", True),
        ["hi bob #0", "hi bob #1"],
        "hi a, b",
        ["hi x", "hi y"],
        grpc.StatusCode.OK,
    ]


# The demo provider on uvloop's loop, in its own process so that SIGTERM reaches it.
SERVE_ON_UVLOOP = """
import sys
import uvloop
from demo.providers import serve
uvloop.run(serve(sys.argv[1], sys.argv[2]))
"""


def test_sigterm_stops_a_provider_on_uvloop_gracefully(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", SERVE_ON_UVLOOP, zookeeper.url, tenant],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    ) as provider:
        try:
            assert provider.stdout is not None
            line = provider.stdout.readline().strip()
            assert line.startswith("serving 127.0.0.1:"), line
            path = instance_path(tenant, int(line.rsplit(":", 1)[1]))
            assert kazoo.exists(path) is not None
            provider.send_signal(signal.SIGTERM)
            assert provider.wait(30) == 0
        finally:
            provider.kill()
    assert kazoo.exists(path) is None
