"""Fixtures of the console tests: a closed tenant (digest ACL), the console serving on a
real port in the test's loop, and headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl
from playwright.async_api import Browser, Page, async_playwright
from typer.testing import CliRunner

from csf.console import ConsoleSettings, create_app
from csf.registry.access import ensure_shared_parents
from csf.registry.cli import app as registry_cli
from csf.registry.paths import tenant_path
from csf.testing.zookeeper import LocalZooKeeper, free_port

CHROMIUM = os.environ.get("CSF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The tests save the main pages here (git-ignored); docs/console/ keeps two for the README.
SCREENSHOTS = Path(__file__).parents[2] / "screenshots"


@dataclass(frozen=True)
class Operator:
    """A closed tenant and the digest credentials its root's ACL names."""

    tenant: str
    user: str
    password: str

    @property
    def url_digest(self) -> str:
        return f"digest={self.user}:{self.password}"


def make_tenant(zookeeper: LocalZooKeeper, tenant: str, user: str, password: str) -> Operator:
    """Create the tenant's root with its digest ACL, as a tenant with credentials has."""
    client = KazooClient(hosts=zookeeper.hosts, auth_data=[("digest", f"{user}:{password}")])
    client.start(timeout=10)
    try:
        ensure_shared_parents(client)
        client.create(tenant_path(tenant), b"", acl=[make_digest_acl(user, password, all=True)])
    finally:
        client.stop()
        client.close()
    return Operator(tenant, user, password)


@pytest.fixture
def operator(zookeeper: LocalZooKeeper, tenant: str) -> Operator:
    return make_tenant(zookeeper, tenant, "ops", "ops-password-1")


@pytest.fixture
def operator_kazoo(zookeeper: LocalZooKeeper, operator: Operator) -> Iterator[KazooClient]:
    """A kazoo client with the operator's credentials, to check what the console wrote."""
    client = KazooClient(
        hosts=zookeeper.hosts, auth_data=[("digest", f"{operator.user}:{operator.password}")]
    )
    client.start(timeout=10)
    yield client
    client.stop()
    client.close()


@dataclass(frozen=True)
class Console:
    url: str
    registry: str


@contextlib.asynccontextmanager
async def serving(settings: ConsoleSettings) -> AsyncIterator[Console]:
    """The console on a free loopback port until the block ends."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,  # an open page's event stream never ends by itself
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):  # started, or the test fails (uvicorn's error)
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield Console(f"http://127.0.0.1:{port}", settings.registry)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The console's tests run in the session's loop, where the one browser lives."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents and inspect.iscoroutinefunction(
            getattr(item, "function", None)
        ):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)


@pytest_asyncio.fixture(loop_scope="session")
async def console(zookeeper: LocalZooKeeper) -> AsyncIterator[Console]:
    settings = ConsoleSettings(f"zk://{zookeeper.hosts}", refresh_s=0.25)
    async with serving(settings) as running:
        yield running


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session (a launch costs seconds); a context each."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, console: Console) -> AsyncIterator[Page]:
    """A fresh browser context; closed before the console stops."""
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    opened = await context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    await context.close()


class OperatorCli:
    """csf-registry with the operator's credentials, run off the loop that serves the
    console (the CLI blocks)."""

    def __init__(self, zookeeper: LocalZooKeeper, operator: Operator) -> None:
        self.base = ["--zk", f"{zookeeper.url}?{operator.url_digest}", "--tenant", operator.tenant]

    def run(self, *args: str) -> str:
        result = CliRunner().invoke(registry_cli, [*self.base, *args])
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result.stdout

    async def __call__(self, *args: str) -> str:
        return await asyncio.to_thread(self.run, *args)


@pytest.fixture
def cli(zookeeper: LocalZooKeeper, operator: Operator) -> OperatorCli:
    return OperatorCli(zookeeper, operator)


@pytest.fixture
def descriptor_file(tmp_path: Path, cli: OperatorCli) -> Path:
    """The descriptor document of demo.providers (service XIESR), as exported."""
    path = tmp_path / "xiesr.json"
    cli.run("export", "demo.providers", "-o", str(path))
    return path


@pytest_asyncio.fixture(loop_scope="session")
async def xiesr(cli: OperatorCli, descriptor_file: Path) -> str:
    """XIESR's descriptor imported (registered) with csf-registry; its service code."""
    await cli("import", str(descriptor_file))
    return "XIESR"
