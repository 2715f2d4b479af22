"""The README's gateway section as a user runs it: its apps file, its signer, and its curl
calls (every kind HTTP offers) against a real csf-gateway and the demo's provider."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from csf.testing.zookeeper import LocalZooKeeper
from demo.gateway import open_xiesr
from tests.conftest import ROOT, greeter_server
from tests.gateway.conftest import start_gateway, stop_gateway

README = (ROOT / "README.md").read_text()
SECTION = README[README.index("## csf-gateway") : README.index("## Observability")]


def _block(language: str, marker: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", SECTION, flags=re.DOTALL)
    [found] = [block for block in blocks if marker in block]
    return found


def _apps() -> dict[str, str]:
    line = next(line for line in _block("bash", "apps.json").splitlines() if "echo" in line)
    apps: dict[str, str] = json.loads(line.split("'")[1])
    return apps


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl, as the README does")
async def test_the_readme_curl_calls_answer_what_it_shows(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    apps = _apps()
    [app] = apps
    (tmp_path / "signer.py").write_text(_block("python", "def csf_headers"))
    server = greeter_server(zookeeper.url, tenant)
    async with server:
        await asyncio.to_thread(open_xiesr, zookeeper.url, tenant, app)
        gateway = await start_gateway(zookeeper, tenant, tmp_path, apps=apps, serves="XIESR")
        try:
            script = _block("bash", "signer.py")
            script = script.replace("localhost:8080", gateway.url.removeprefix("http://"))
            script = script.replace("python signer.py", f"{sys.executable} signer.py")
            process = await asyncio.create_subprocess_exec(
                "bash", "-c", script, cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 60)
        finally:
            await stop_gateway(gateway)
    assert process.returncode == 0, err.decode()
    shown = [line[2:] for line in script.splitlines() if line.startswith("# {")]
    address = re.compile(r'"servedBy":"[^"]*"')
    printed = [address.sub('"servedBy":""', line) for line in out.decode().splitlines()]

    assert printed == [address.sub('"servedBy":""', line) for line in shown]
