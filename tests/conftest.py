"""Shared fixtures: a real ZooKeeper, provider processes, and polling with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient

import csf
from csf.registry import ZooKeeperRegistry
from csf.rule_set import ServiceRules
from csf.rules import parse_rule
from csf.testing.zookeeper import LocalZooKeeper
from demo.providers import Greeter
from tests.observability.memory import telemetry  # noqa: F401  (a fixture for every test)

ROOT = Path(__file__).resolve().parent.parent

# CSF_TEST_LOOP=uvloop runs every async test and fixture on uvloop's loop (the uvloop extra).
# pytest-asyncio applies its loop-factory hook whenever one exists, so it exists only then.
TEST_LOOP = os.environ.get("CSF_TEST_LOOP", "asyncio")
if TEST_LOOP == "uvloop":
    import uvloop

    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
        return {"uvloop": uvloop.new_event_loop}

elif TEST_LOOP != "asyncio":
    raise pytest.UsageError(f"CSF_TEST_LOOP is asyncio or uvloop, not {TEST_LOOP!r}")


def pytest_report_header() -> str:
    return f"event loop: {TEST_LOOP} (CSF_TEST_LOOP)"


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalZooKeeper]:
    """One ZooKeeper for the session; tests keep apart by using their own tenant."""
    server = LocalZooKeeper(tmp_path_factory.mktemp("zk-shared"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_zookeeper(tmp_path: Path) -> Iterator[LocalZooKeeper]:
    """A ZooKeeper for one test, which it may stop and start again."""
    server = LocalZooKeeper(tmp_path / "zk")
    server.start()
    yield server
    server.stop()


_tenants = itertools.count()


@pytest.fixture
def tenant() -> str:
    return f"T{next(_tenants)}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kazoo(zookeeper: LocalZooKeeper) -> Iterator[KazooClient]:
    """A plain kazoo client, to look at and tamper with ZooKeeper from the outside."""
    client = KazooClient(hosts=zookeeper.hosts)
    client.start(timeout=10)
    yield client
    client.stop()
    client.close()


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], within: float = 10.0, what: str = ""
) -> float:
    """Poll `condition` until true; returns the seconds it took, fails at the deadline."""
    start = time.monotonic()
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            pytest.fail(f"timed out after {within}s waiting for {what or condition}")
        await asyncio.sleep(0.02)


class ProviderProcess:
    """A demo provider in its own process (`python -m demo provider`)."""

    def __init__(self, process: asyncio.subprocess.Process, address: str) -> None:
        self.process = process
        self.address = address

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    async def stop(self) -> int:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
        return await self.process.wait()


@pytest.fixture
async def providers() -> AsyncIterator[Callable[..., Awaitable[ProviderProcess]]]:
    """Start demo provider processes; every one still running is killed at the end."""
    started: list[ProviderProcess] = []

    async def start(registry: str, tenant: str, *extra: str) -> ProviderProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "demo",
            "provider",
            "--registry",
            registry,
            "--tenant",
            tenant,
            *extra,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail("provider process did not report its address within 30 s")
        text = line.decode().strip()
        if not text.startswith("serving "):
            process.kill()
            await process.wait()
            pytest.fail(f"provider process said {text!r}")
        provider = ProviderProcess(process, text.removeprefix("serving "))
        started.append(provider)
        return provider

    yield start
    for provider in started:
        await provider.stop()


def greeter_server(
    registry: str, tenant: str, servicer: type[Greeter] = Greeter, **kwargs: object
) -> csf.Server:
    """An in-process provider (not started) of `servicer` that stops without lingering."""
    settings: dict[str, object] = {"deregister_wait": 0, "grace": 2.0, "handle_signals": False}
    settings.update(kwargs)
    server = csf.Server(registry=registry, tenant=tenant, **settings)  # type: ignore[arg-type]
    server.add(servicer(lambda: server.address))
    return server


def instance_path(tenant: str, port: int, group: str = "normal") -> str:
    """The znode of a demo provider of XIESR on 127.0.0.1:`port`."""
    return f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster/{group}/127.0.0.1:{port}"


Act = Callable[[Any], Awaitable[None]]


def counted(calls: Counter[str], name: str, act: Act | None = None) -> type[Greeter]:
    """A provider class that counts its SayHello calls under `name`, then runs `act`
    on the call's context (abort it, say) before answering as the Greeter does."""

    async def say_hello(self: Greeter, request: Any, context: Any) -> Any:
        calls[name] += 1
        if act is not None:
            await act(context)
        return await Greeter.SayHello(self, request, context)

    cls = type(f"Greeter{name.title()}", (Greeter,), {"SayHello": say_hello})
    return csf.provider(service="XIESR", version="1.0.0", warmup=0)(cls)


async def unavailable(context: Any) -> None:
    """An `act` for `counted`: the provider fails the call with UNAVAILABLE."""
    await context.abort(grpc.StatusCode.UNAVAILABLE, "failing on purpose")


def greeter_variant(delay: float = 0.0, **spec: Any) -> type[Greeter]:
    """A Greeter provider class with its own @csf.provider settings and an added delay."""

    async def say_hello(self: Greeter, request: Any, context: Any) -> Any:
        await asyncio.sleep(delay)
        return await Greeter.SayHello(self, request, context)

    body = {"SayHello": say_hello} if delay else {}
    settings = {"service": "XIESR", "version": "1.0.0", "warmup": 0, **spec}
    return csf.provider(**settings)(type("GreeterVariant", (Greeter,), body))


def zk_registry(server: csf.Server) -> ZooKeeperRegistry:
    registry = server.registry
    assert isinstance(registry, ZooKeeperRegistry)
    return registry


def expire_session(hosts: str, client: KazooClient) -> None:
    """Make ZooKeeper expire `client`'s session: another client takes it over and closes it."""
    session_id, password = client.client_id
    thief = KazooClient(hosts=hosts, client_id=(session_id, password))
    thief.start(timeout=10)
    thief.stop()
    thief.close()


_figures: list[str] = []


@pytest.fixture
def figures() -> list[str]:
    """Lines a test measured (times, counts); printed in pytest's closing summary."""
    return _figures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _figures:
        terminalreporter.section("figures measured by the tests")
        for line in _figures:
            terminalreporter.write_line(line)


def consumer_for(
    registry: str,
    tenant: str,
    snapshot_dir: Path,
    app: str = "test",
    observability: csf.Observability | None = None,
) -> csf.Consumer:
    """A consumer (not started) whose snapshots go to the test's own folder."""
    return csf.Consumer(
        registry=registry,
        tenant=tenant,
        app=app,
        snapshot_dir=snapshot_dir,
        observability=observability,
    )


def consumer_with_filter(
    registry: str, tenant: str, snapshot_dir: Path, *, after: str, filter_: csf.Filter
) -> csf.Consumer:
    """A consumer (not started) whose default chain has `filter_` right after `after`."""
    chain = list(csf.DEFAULT_CONSUMER_CHAIN)
    chain.insert(chain.index(after) + 1, "under_test")
    return csf.Consumer(
        registry=registry,
        tenant=tenant,
        app="test",
        snapshot_dir=snapshot_dir,
        chain=chain,
        filters={"under_test": lambda ctx: filter_},
    )


@contextlib.asynccontextmanager
async def serving(
    registry: str, tenant: str, *servicers: type[Greeter]
) -> AsyncIterator[list[csf.Server]]:
    """Run one in-process provider per servicer class for the block's duration."""
    async with contextlib.AsyncExitStack() as stack:
        servers = [greeter_server(registry, tenant, servicer) for servicer in servicers]
        for server in servers:
            await stack.enter_async_context(server)
        yield servers


def push_rule(
    kazoo: KazooClient, tenant: str, kind: str, document: object, service: str = "XIESR"
) -> None:
    """Write a rule document (JSON-encoded unless bytes) as an operator would."""
    path = f"/busidomain/csf/{tenant}/{service}/configs/{kind}"
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    if kazoo.exists(path) is None:
        kazoo.create(path, data, makepath=True)
    else:
        kazoo.set(path, data)


async def pushed(
    kazoo: KazooClient, tenant: str, rules: ServiceRules, kind: str, document: object
) -> None:
    """Push a rule as an operator would, and wait until `rules` (a consumer's or a
    server's `rules("XIESR")`) hold exactly that rule."""
    await asyncio.to_thread(push_rule, kazoo, tenant, kind, document)
    expected = parse_rule(kind, json.dumps(document).encode())
    await wait_until(lambda: rules.current[kind] == expected, 10, f"the {kind} rule")


async def removed(kazoo: KazooClient, tenant: str, rules: ServiceRules, kind: str) -> None:
    """Delete a rule, and wait until `rules` are back to that kind's defaults."""
    await asyncio.to_thread(kazoo.delete, f"/busidomain/csf/{tenant}/XIESR/configs/{kind}")
    await wait_until(lambda: rules.current[kind] is None, 10, f"the {kind} rule gone")
