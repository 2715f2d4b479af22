"""Fixtures of the gateway tests: the shop proto built, a real SHOP provider registered,
its descriptor imported and opened, and a real csf-gateway process in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from google.api import annotations_pb2
from grpc_tools import protoc

import csf
from csf.config import parse_registry_url
from csf.gateway import sign
from csf.registry.admin import RegistryAdmin
from csf.registry.descriptors import export, parse
from csf.testing.zookeeper import LocalZooKeeper, free_port
from tests.conftest import wait_until

PROTOS = Path(__file__).parent / "protos"
APPS = {"web": "web-secret-0123456789", "partner": "partner-secret-0123456"}
GATEWAY_APP, GATEWAY_APP_SECRET = "csf-gateway", "gateway-secret-0123456789"


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """tests.gateway.shop_service, over shop_pb2 generated from protos/ for this session."""
    target = tmp_path_factory.mktemp("shop-protos")
    googleapis = Path(annotations_pb2.__file__).parent.parent.parent
    code = protoc.main([
        "protoc",
        f"-I{PROTOS}",
        f"-I{googleapis}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={target}",
        f"--grpc_python_out={target}",
        str(PROTOS / "shop" / "shop.proto"),
    ])  # fmt: skip
    assert code == 0, "protoc failed on shop.proto"
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    return importlib.import_module("tests.gateway.shop_service")


@dataclass
class Deployment:
    """One tenant with SHOP served, open, and `web` subscribed."""

    zookeeper: LocalZooKeeper
    tenant: str
    server: csf.Server

    def admin(self) -> RegistryAdmin:
        return RegistryAdmin(parse_registry_url(self.zookeeper.url), self.tenant)  # type: ignore[arg-type]

    async def run(self, action: Callable[[RegistryAdmin], Any]) -> Any:
        def act() -> Any:
            with self.admin() as admin:
                return action(admin)

        return await asyncio.to_thread(act)


@pytest.fixture
async def deployment(
    zookeeper: LocalZooKeeper, tenant: str, shop: ModuleType
) -> AsyncIterator[Deployment]:
    async with deployed(zookeeper, tenant, shop) as found:
        yield found


@contextlib.asynccontextmanager
async def deployed(
    zookeeper: LocalZooKeeper,
    tenant: str,
    shop: ModuleType,
    auth: csf.CallerAuth | None = None,
) -> AsyncIterator[Deployment]:
    """SHOP served by a provider in this process (checking callers with `auth`), imported,
    open, and `web` and the gateway's own app subscribed."""
    server = csf.Server(
        registry=zookeeper.url,
        tenant=tenant,
        host="127.0.0.1",
        port=0,
        deregister_wait=0,
        grace=1.0,
        handle_signals=False,
        auth=auth,
    )
    server.add(shop.Shop())
    async with server:
        found = Deployment(zookeeper, tenant, server)
        descriptors = export(["tests.gateway.shop_service:Shop"])

        def open_shop(admin: RegistryAdmin) -> None:
            admin.import_descriptors(parse(descriptors))
            admin.transition("SHOP", "online")
            admin.transition("SHOP", "open")
            admin.subscribe("web", "SHOP")
            admin.subscribe(GATEWAY_APP, "SHOP")

        await found.run(open_shop)
        yield found


@dataclass
class GatewayProcess:
    url: str
    process: asyncio.subprocess.Process
    log: Path

    def signed(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        app: str = "web",
        secret: str | None = None,
        timestamp: str | None = None,
        nonce: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """The headers of a request signed as `app` (with its secret unless told)."""
        timestamp = timestamp or str(int(time.time() * 1000))
        nonce = nonce or secrets.token_urlsafe(16)
        key = secret if secret is not None else APPS[app]
        return {
            "X-Csf-App": app,
            "X-Csf-Timestamp": timestamp,
            "X-Csf-Nonce": nonce,
            "X-Csf-Signature": sign(key, method, path, timestamp, nonce, body),
            **(headers or {}),
        }

    async def request(
        self, client: httpx.AsyncClient, method: str, path: str, body: bytes = b"", **kwargs: Any
    ) -> httpx.Response:
        extra = kwargs.pop("headers", None)
        headers = self.signed(method, path, body, headers=extra, **kwargs)
        return await client.request(method, self.url + path, content=body, headers=headers)


async def start_gateway(
    zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    *extra: str,
    apps: dict[str, str] = APPS,
    serves: str = "SHOP",
) -> GatewayProcess:
    """A csf-gateway process for `tenant`, once its health check names `serves`."""
    apps_file = tmp_path / "apps.json"
    apps_file.write_text(json.dumps(apps))
    port = free_port()
    log = tmp_path / f"gateway-{port}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "csf.gateway.cli",
            "--registry", zookeeper.url, "--tenant", tenant, "--apps", str(apps_file),
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *extra,
            stdout=out, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "CSF_GATEWAY_SECRET": GATEWAY_APP_SECRET},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    gateway = GatewayProcess(url, process, log)

    async def serving() -> bool:
        if process.returncode is not None:
            raise AssertionError(f"csf-gateway exited: {log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient() as client:
                reply = await client.get(url + "/healthz")
                return reply.status_code == 200 and serves in reply.json()["open_services"]
        return False

    await wait_until(serving, within=20, what=f"csf-gateway serving {serves}")
    return gateway


async def stop_gateway(gateway: GatewayProcess) -> None:
    if gateway.process.returncode is None:
        gateway.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(gateway.process.wait(), 10)
        except TimeoutError:
            gateway.process.kill()
            await gateway.process.wait()


@pytest.fixture
async def gateway(deployment: Deployment, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    started = await start_gateway(deployment.zookeeper, deployment.tenant, tmp_path)
    try:
        yield started
    finally:
        await stop_gateway(started)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as found:
        yield found
