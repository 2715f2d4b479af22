"""csf-console as the README starts it: a real process, its flags, its refusals."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from csf.testing.zookeeper import LocalZooKeeper, free_port
from tests.conftest import wait_until

README = (Path(__file__).parents[2] / "README.md").read_text()


def _console(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "csf.console.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_the_readme_flags_are_the_console_flags() -> None:
    line = re.search(r"^csf-console (.*?)\s+#", README, re.MULTILINE)
    assert line is not None, "the README shows how to start csf-console"
    usage = _console("--help").stdout
    for flag in [*re.findall(r"--[a-z-]+", line.group(1)), "--open-tenants"]:
        assert flag in usage


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--registry", "static://127.0.0.1:1"], "zk://"),
        (["--registry", "zk://127.0.0.1:1", "--host", "unix:/x"], "--host"),
        (["--registry", "zk://127.0.0.1:1", "--port", "70000"], "--port"),
        (["--registry", "zk://127.0.0.1:1", "--idle", "5"], "idle"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it_and_exit_2(args: list[str], named: str) -> None:
    done = _console(*args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and named in done.stderr
    assert done.stderr.startswith("csf-console: ")


async def test_the_readme_command_serves_the_login_page(zookeeper: LocalZooKeeper) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csf.console.cli", "--registry", zookeeper.url,
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def login_page() -> bool:
                try:
                    return (await http.get("/login")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(login_page, 30, "csf-console serving /login")
            answer = await http.get("/services")
            assert answer.status_code == 303 and answer.headers["location"] == "/login"
    finally:
        process.terminate()
        # uvicorn stops cleanly, then passes SIGTERM on to the default handler.
        assert await asyncio.wait_for(process.wait(), 15) in (0, -signal.SIGTERM)


@pytest.mark.parametrize(("command", "module"), [("console", "starlette"), ("gateway", "uvicorn")])
def test_without_its_extra_a_command_says_which_extra_to_install(command: str, module: str) -> None:
    hide = f"import sys; sys.modules[{module!r}] = None; import csf._commands as c; c.{command}()"
    done = subprocess.run(
        [sys.executable, "-c", hide], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and f"csf[{command}]" in done.stderr
    assert "Traceback" not in done.stderr
