"""Logging in: a tenant's digest credentials, nothing else; another tenant never shows."""

from __future__ import annotations

from playwright.async_api import Page

from csf.testing.zookeeper import LocalZooKeeper
from tests.console.conftest import Console, Operator, make_tenant
from tests.console.pages import LoginPage


async def test_wrong_credentials_are_refused_and_right_ones_open_the_tenant(
    page: Page, console: Console, operator: Operator
) -> None:
    login = await LoginPage(page, console.url).open()
    await login.log_in(operator.tenant, operator.user, "not-the-password")
    assert "not accepted" in await login.error()
    assert page.url.endswith("/login")

    services = await login.log_in_as(operator)
    assert await page.locator("#tenant").inner_text() == operator.tenant
    assert "0 services" in await services.count_line()
    await services.screenshot("login-done")


async def test_no_password_opens_no_closed_tenant_and_no_open_one_by_default(
    page: Page, console: Console, operator: Operator, zookeeper: LocalZooKeeper, kazoo: object
) -> None:
    login = await LoginPage(page, console.url).open()
    await login.log_in(operator.tenant, "", "")
    assert "not accepted" in await login.error()
    kazoo.ensure_path("/busidomain/csf/OPEN-TENANT")  # type: ignore[attr-defined]
    await login.log_in("OPEN-TENANT", "", "")
    assert "--open-tenants" in await login.error()


async def test_another_tenants_data_is_never_visible(
    page: Page, console: Console, operator: Operator, zookeeper: LocalZooKeeper, tenant: str
) -> None:
    other = make_tenant(zookeeper, f"{tenant}-other", "them", "their-password-1")
    services = await LoginPage(page, console.url).log_in_as(operator)
    # The other tenant's credentials do not open this tenant, nor this login that one.
    response = await page.goto(f"{console.url}/services/{other.tenant}")
    assert response is not None and response.status == 400
    await services.open()
    assert other.tenant not in await page.content()
