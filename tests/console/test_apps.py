"""Apps in the browser: add one, subscribe it to an open service, unsubscribe."""

from __future__ import annotations

import json

from kazoo.client import KazooClient
from playwright.async_api import Page

from csf.registry.paths import apps_path, subscriptions_path
from tests.console.conftest import Console, Operator, OperatorCli
from tests.console.pages import AppsPage, LoginPage


async def test_add_an_app_and_subscribe_it_to_an_open_service(
    page: Page,
    console: Console,
    operator: Operator,
    operator_kazoo: KazooClient,
    cli: OperatorCli,
    xiesr: str,
) -> None:
    await LoginPage(page, console.url).log_in_as(operator)
    apps = await AppsPage(page, console.url).open()
    await apps.add("web", "the web shop")
    await page.wait_for_url("**/apps")
    data, _ = operator_kazoo.get(f"{apps_path(operator.tenant)}/web")
    assert json.loads(data)["description"] == "the web shop"

    await apps.add("web")
    assert "exists already" in await apps.error()

    await apps.open()
    await apps.subscribe("web", "XIESR")  # registered, not open: refused, as the CLI does
    assert "not open" in await apps.error()
    subscription = f"{subscriptions_path(operator.tenant, 'XIESR')}/web"
    assert operator_kazoo.exists(subscription) is None

    await cli("online", "XIESR")
    await cli("open", "XIESR")
    await apps.open()
    await apps.subscribe("web", "XIESR")
    await page.wait_for_url("**/apps")
    assert operator_kazoo.exists(subscription) is not None
    assert "XIESR" in await apps.subscribed("web")
    await apps.screenshot("apps")

    await apps.unsubscribe("web", "XIESR")
    await page.wait_for_url("**/apps")
    assert operator_kazoo.exists(subscription) is None
    assert "XIESR" not in await apps.subscribed("web")
