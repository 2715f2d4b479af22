"""Services in the browser: import, then online, then open; the list at 2,000 services;
a change made with csf-registry showing on the open page."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kazoo.client import KazooClient
from playwright.async_api import Page

from csf.registry.paths import service_path, tenant_path
from tests.conftest import wait_until
from tests.console.conftest import Console, Operator, OperatorCli
from tests.console.pages import ImportPage, LoginPage, ServicePage, ServicesPage

GREETER = "demo.Greeter"


def _status(kazoo: KazooClient, tenant: str) -> str:
    data, _ = kazoo.get(f"{service_path(tenant, 'XIESR')}/services/{GREETER}")
    return str(json.loads(data)["status"])


async def test_import_shows_what_it_writes_then_online_then_open(
    page: Page,
    console: Console,
    operator: Operator,
    operator_kazoo: KazooClient,
    descriptor_file: Path,
) -> None:
    await LoginPage(page, console.url).log_in_as(operator)
    importing = await ImportPage(page, console.url).open()
    await importing.preview(descriptor_file)
    planned = await importing.planned()
    assert any("XIESR" in row and GREETER in row and "create" in row for row in planned)
    await importing.screenshot("import-preview")
    # The preview wrote nothing.
    assert operator_kazoo.exists(service_path(operator.tenant, "XIESR")) is None
    await importing.confirm()
    await page.wait_for_url("**/services?q=XIESR")
    assert _status(operator_kazoo, operator.tenant) == "registered"

    service = await ServicePage(page, console.url).open("XIESR")
    # Offered exactly as the CLI allows them from registered (a forced POST: test_http).
    assert await service.offered() == {"online", "deregister"}

    for action, status in (("online", "online"), ("open", "open")):
        await service.open("XIESR")
        await service.act(action)
        await page.wait_for_url("**/services/XIESR")
        assert _status(operator_kazoo, operator.tenant) == status
        assert await service.status_of(GREETER) == status
    await service.screenshot("service-lifecycle")


async def test_a_change_made_with_the_cli_shows_on_the_open_page_within_2_s(
    page: Page, console: Console, operator: Operator, cli: OperatorCli, xiesr: str
) -> None:
    await LoginPage(page, console.url).log_in_as(operator)
    service = await ServicePage(page, console.url).open("XIESR")
    assert await service.status_of(GREETER) == "registered"

    await cli("online", "XIESR")
    shown = await wait_until(
        lambda: service.status_of_now(GREETER, "online"), within=2.0, what="online on the page"
    )
    print(f"\nconsole: a lifecycle change made with csf-registry showed after {shown:.2f} s")


async def test_two_thousand_services_are_listed_a_page_at_a_time(
    page: Page, console: Console, operator: Operator, operator_kazoo: KazooClient
) -> None:
    codes = [f"SVC{n:04d}" for n in range(2000)]
    transaction = operator_kazoo.transaction()
    for code in codes:
        transaction.create(f"{tenant_path(operator.tenant)}/{code}", b"")
    assert not any(isinstance(r, Exception) for r in transaction.commit())

    services = await LoginPage(page, console.url).log_in_as(operator)
    started = time.perf_counter()
    await services.open()
    first = time.perf_counter() - started
    assert "2000 services" in await services.count_line()
    assert await services.codes() == codes[:50]
    await services.next()
    assert await services.codes() == codes[50:100]
    started = time.perf_counter()
    await services.search("SVC19")
    searched = time.perf_counter() - started
    assert await services.codes() == codes[1900:1950]
    assert "100 services" in await services.count_line()
    print(f"\nconsole: 2,000 services: page {first * 1e3:.0f} ms, search {searched * 1e3:.0f} ms")
    await ServicesPage(page, console.url).open(page=40)
    assert await services.codes() == codes[1950:]
