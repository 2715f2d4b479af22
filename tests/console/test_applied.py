"""'Applied by N of M': the rule page counts the processes that applied the version in
force, lists those that refused it (with their reason) or lag, and updates live."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Page

import csf
from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import wait_until
from tests.console.conftest import Console, Operator, OperatorCli
from tests.console.pages import LoginPage, RulePage

ROOT = Path(__file__).parents[2]


@contextlib.asynccontextmanager
async def old_consumer(registry: str, tenant: str, work: Path) -> AsyncIterator[None]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.console.old_consumer", registry, tenant, str(work),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line.strip() == b"reading"
        yield
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_applied_by_counts_up_as_consumers_start_and_shows_an_old_consumers_refusal(
    page: Page,
    console: Console,
    operator: Operator,
    zookeeper: LocalZooKeeper,
    cli: OperatorCli,
    xiesr: str,
    tmp_path: Path,
) -> None:
    registry = f"{zookeeper.url}?{operator.url_digest}"
    await cli("rule", "set", "XIESR", "concurrency", "--json", '{"schema": 1, "consumer": 5}')
    await LoginPage(page, console.url).log_in_as(operator)
    rule = await RulePage(page, console.url).open("XIESR", "concurrency")
    assert "applied by 0 of 0" in await rule.applied()

    async def applied_reads(expected: str) -> bool:
        return expected in await rule.applied()

    async with contextlib.AsyncExitStack() as stack:
        for count in (1, 2):
            consumer = csf.Consumer(
                registry=registry,
                tenant=operator.tenant,
                app=f"app-{count}",
                snapshot_dir=tmp_path / str(count),
            )
            await stack.enter_async_context(consumer)
            consumer.rules("XIESR")
            took = await wait_until(lambda c=count: applied_reads(f"applied by {c} of {c}"), 2.0)
            print(f"\nconsole: consumer {count} counted as applied after {took:.2f} s")
        await stack.enter_async_context(old_consumer(registry, operator.tenant, tmp_path / "old"))
        await wait_until(lambda: applied_reads("applied by 3 of 3"), 2.0, "the old consumer")

        newer = {"schema": 1, "consumer": 5, "max_wait_ms": 100}
        await rule.submit_json(json.dumps(newer))
        await rule.confirm()
        await page.wait_for_url("**/rules/concurrency")
        await wait_until(lambda: applied_reads("applied by 2 of 3"), 2.0, "the refusal")
        listed = await page.locator("#processes").text_content() or ""
        assert all(app in listed for app in ("app-1", "app-2", "old-app"))
        refused = await page.locator("#refused").inner_text()
        assert "old-app" in refused and "max_wait_ms" in refused
        await rule.screenshot("rule-applied")
