"""A Greeter provider of one SET in its own process, for tests that kill it:

    python -m tests.set_provider_process REGISTRY TENANT SET

prints "serving HOST:PORT" once registered, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import sys

import csf
from demo.providers import Greeter


async def serve(registry: str, tenant: str, set_name: str) -> None:
    server = csf.Server(registry, tenant, set=set_name)
    server.add(Greeter(lambda: server.address))
    async with server:
        print(f"serving {server.address}", flush=True)
        await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(serve(*sys.argv[1:4]))
