"""A consumer of an older CSF, in its own process: its concurrency rule knows no
`max_wait_ms`, so it refuses a rule that has one (and keeps its last good rule).

python -m tests.console.old_consumer REGISTRY TENANT SNAPSHOT_DIR: reads XIESR's rules,
prints `reading`, and runs until it is stopped (at most a minute).
"""

import asyncio
import sys
from pathlib import Path

import csf
from csf.rules import ConcurrencyRule

OLD_KEYS = {key: check for key, check in ConcurrencyRule.CHECKS.items() if key != "max_wait_ms"}


async def main(registry: str, tenant: str, snapshot_dir: Path) -> None:
    ConcurrencyRule.CHECKS = OLD_KEYS  # type: ignore[misc]
    async with csf.Consumer(
        registry=registry, tenant=tenant, app="old-app", snapshot_dir=snapshot_dir
    ) as consumer:
        consumer.rules("XIESR")
        print("reading", flush=True)
        await asyncio.sleep(60)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
