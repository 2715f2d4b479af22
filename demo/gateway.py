"""The demo's gateway part: XIESR's descriptor imported and opened, an app subscribed, a
csf-gateway process started, and a signed curl call through it."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from csf.config import ZooKeeperURL, parse_registry_url
from csf.gateway import sign
from csf.registry.admin import RegistryAdmin
from csf.registry.descriptors import export, parse
from csf.testing.zookeeper import free_port

APP, SECRET = "demo-web", "demo-web-secret-0123456789"
PATH = "/XIESR/demo.Greeter/SayHello"


def open_xiesr(registry: str, tenant: str, app: str = APP) -> None:
    """What an operator does with csf-registry: import, online, open, subscribe `app`."""
    url = parse_registry_url(registry)
    assert isinstance(url, ZooKeeperURL)
    with RegistryAdmin(url, tenant) as admin:
        admin.import_descriptors(parse(export(["demo.providers"])))
        admin.transition("XIESR", "online")
        admin.transition("XIESR", "open")
        admin.subscribe(app, "XIESR")


def signed_curl(base: str, body: bytes) -> list[str]:
    timestamp, nonce = str(int(time.time() * 1000)), secrets.token_urlsafe(16)
    signature = sign(SECRET, "POST", PATH, timestamp, nonce, body)
    return [
        "curl", "-sS", "-X", "POST", base + PATH,
        "-H", f"X-Csf-App: {APP}", "-H", f"X-Csf-Timestamp: {timestamp}",
        "-H", f"X-Csf-Nonce: {nonce}", "-H", f"X-Csf-Signature: {signature}",
        "-d", body.decode(),
    ]  # fmt: skip


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status)
    except OSError:
        return 0


async def _post(command: list[str]) -> str:
    """curl's output, or the same request made by urllib where curl is missing."""
    if shutil.which("curl"):
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        output, _ = await process.communicate()
        return output.decode()
    headers = dict(item.split(": ", 1) for item in command[6:-2:2])
    request = urllib.request.Request(command[4], command[-1].encode(), headers, method="POST")

    def send() -> str:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return bytes(reply.read()).decode()

    return await asyncio.to_thread(send)


async def show_gateway(registry: str, tenant: str, work: Path) -> None:
    await asyncio.to_thread(open_xiesr, registry, tenant)
    apps = work / "apps.json"
    apps.write_text(json.dumps({APP: SECRET}))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csf.gateway.cli", "--registry", registry, "--tenant", tenant,
        "--apps", str(apps), "--port", str(port), "--log-level", "warning",
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            while await asyncio.to_thread(_get, base + "/healthz") != 200:  # noqa: ASYNC110 (bounded)
                await asyncio.sleep(0.1)
        print(f"csf-gateway serving XIESR on {base}")
        command = signed_curl(base, b'{"name": "curl"}')
        print("$ " + " ".join(f"'{part}'" if " " in part or "{" in part else part
                              for part in command))  # fmt: skip
        print(await _post(command))
    finally:
        gateway.terminate()
        await gateway.wait()
