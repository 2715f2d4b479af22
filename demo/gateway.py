"""The demo's gateway part: XIESR's descriptor imported and opened, an app subscribed, a
csf-gateway process started, and a signed curl call through it."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from csf.config import ZooKeeperURL, parse_registry_url
from csf.gateway import signed_headers
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


def curl_command(base: str, headers: dict[str, str], body: bytes) -> list[str]:
    flags = [item for name, value in headers.items() for item in ("-H", f"{name}: {value}")]
    return ["curl", "-sS", "-X", "POST", base + PATH, *flags, "-d", body.decode()]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status)
    except OSError:
        return 0


async def wait_serving(url: str) -> None:
    """Until GET `url` answers 200, for at most 30 seconds."""
    async with asyncio.timeout(30):
        while await asyncio.to_thread(_get, url) != 200:  # noqa: ASYNC110 (bounded)
            await asyncio.sleep(0.1)


async def _post(url: str, headers: dict[str, str], body: bytes) -> str:
    """The answer (an error's JSON too), through curl as shown, or urllib without curl."""
    if shutil.which("curl"):
        command = curl_command(url.removesuffix(PATH), headers, body)
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        output, _ = await process.communicate()
        return output.decode()
    request = urllib.request.Request(url, body, headers, method="POST")

    def send() -> str:
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return bytes(reply.read()).decode()
        except urllib.error.HTTPError as refused:
            return bytes(refused.read()).decode()

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
        await wait_serving(base + "/healthz")
        print(f"csf-gateway serving XIESR on {base}")
        body = b'{"name": "curl"}'
        headers = signed_headers(APP, SECRET, "POST", PATH, body)
        command = curl_command(base, headers, body)
        print("$ " + " ".join(shlex.quote(part) for part in command))
        print(await _post(base + PATH, headers, body))
    finally:
        gateway.terminate()
        await gateway.wait()
