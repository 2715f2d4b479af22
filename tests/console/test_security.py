"""What ZooKeeper holds renders as text, and a form without the login's token is refused."""

from __future__ import annotations

import json

import httpx
from kazoo.client import KazooClient
from playwright.async_api import Page, Route

from csf.registry.paths import apps_path, tenant_path
from tests.console.conftest import Console, Operator
from tests.console.pages import AppsPage, LoginPage

XSS = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"


async def test_hostile_names_render_as_text(
    page: Page, console: Console, operator: Operator, operator_kazoo: KazooClient
) -> None:
    """A service and an app named XSS (no '/' fits in a znode name) and a description
    with a script tag, written by someone else straight into ZooKeeper."""
    root = tenant_path(operator.tenant)
    operator_kazoo.create(f"{root}/{XSS}", b"")
    operator_kazoo.create(f"{root}/{XSS}/clusters/defaultCluster/{XSS}", b"", makepath=True)
    app = {"schema": 1, "app": XSS, "description": SCRIPT}
    operator_kazoo.create(
        f"{apps_path(operator.tenant)}/{XSS}", json.dumps(app).encode(), makepath=True
    )
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))

    services = await LoginPage(page, console.url).log_in_as(operator)
    assert XSS in await services.codes()
    assert XSS in await page.locator("#services").inner_text()
    assert await page.locator("#services img").count() == 0
    apps = await AppsPage(page, console.url).open()
    text = await page.locator("#apps").inner_text()
    assert XSS in text and SCRIPT in text
    assert await page.locator("#apps img, #apps script").count() == 0
    await apps.screenshot("xss")
    assert dialogs == []


async def test_a_post_without_the_logins_csrf_token_is_refused_and_changes_nothing(
    page: Page, console: Console, operator: Operator, operator_kazoo: KazooClient
) -> None:
    await LoginPage(page, console.url).log_in_as(operator)
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    assert cookies, "the login set its cookie"
    cookie = next(c for c in await page.context.cookies())
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    async with httpx.AsyncClient(base_url=console.url, cookies=cookies) as client:
        missing = await client.post("/apps", data={"app": "evil"})
        wrong = await client.post("/apps", data={"app": "evil", "csrf_token": "guess"})
        logout = await client.post("/logout", data={})
    assert (missing.status_code, wrong.status_code, logout.status_code) == (403, 403, 403)
    assert "csrf_token" in missing.text
    assert operator_kazoo.exists(f"{apps_path(operator.tenant)}/evil") is None
    # The login still works: the refused logout did not log out.
    await AppsPage(page, console.url).open()
    assert page.url.endswith("/apps")


async def test_a_cross_site_form_posted_from_the_browser_changes_nothing(
    page: Page, console: Console, operator: Operator, operator_kazoo: KazooClient
) -> None:
    """Another site's page that posts a form to the console while the operator is
    logged in: the SameSite=Strict cookie stays home and the token is missing."""
    await LoginPage(page, console.url).log_in_as(operator)
    evil = (
        f'<form id="f" method="post" action="{console.url}/apps">'
        '<input name="app" value="evil"></form><script>f.submit()</script>'
    )

    async def serve_evil(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body=evil)

    await page.route("http://evil.example/**", serve_evil)
    async with page.expect_response(f"{console.url}/apps") as answer:
        await page.goto("http://evil.example/page")
    assert (await answer.value).status == 403
    assert operator_kazoo.exists(f"{apps_path(operator.tenant)}/evil") is None
