"""The demo's console part: a csf-console process beside the providers, its URL printed.

The demo's tenant has no ACL, so the console is started with --open-tenants and the
login needs no user or password. With --keep the demo waits for Ctrl-C before it stops
everything, so that the console can be tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from csf.testing.zookeeper import free_port
from demo.gateway import wait_serving


@contextlib.asynccontextmanager
async def console_beside(registry: str, tenant: str) -> AsyncIterator[str]:
    """A csf-console process on a free loopback port while the block runs; its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    console = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csf.console.cli", "--registry", registry, "--port", str(port),
        "--open-tenants", "--log-level", "warning",
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_serving(base + "/login")
        print(f"csf-console: {base}/login  (tenant {tenant}; no user or password: it is open)")
        yield base
    finally:
        console.terminate()
        await console.wait()
