"""Trying a call from the browser: a unary method of an open service, a JSON request,
the reply as the gateway's JSON; a bad request, a closed service or a streaming method
refused before anything reaches the provider."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import pytest_asyncio
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from playwright.async_api import Page

import csf
from csf.console.call_pages import MAX_REQUEST_CHARS
from csf.registry.paths import applied_path
from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import wait_until
from tests.console.conftest import Console, Operator
from tests.console.pages import CallPage, LoginPage, ServicePage
from tests.gateway.conftest import Deployment, deployed, shop  # noqa: F401  (a fixture)

GET_ITEM = "shop.Shop/GetItem"
LIST_ITEMS = "shop.Shop/ListItems"


@contextlib.contextmanager
def _closed_tenant(
    monkeypatch: pytest.MonkeyPatch, operator: Operator, tmp_path: Path
) -> Iterator[None]:
    """The provider and the tests' admin act in the operator's closed tenant with its
    digest (as CSF_ZK_DIGEST gives it); consumers keep their snapshots in the test's
    folder."""
    with monkeypatch.context() as patched:
        patched.setenv("CSF_ZK_DIGEST", f"{operator.user}:{operator.password}")
        patched.setenv("CSF_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
        yield


@pytest_asyncio.fixture(loop_scope="session")  # the console's and the browser's loop
async def served(
    zookeeper: LocalZooKeeper,
    operator: Operator,
    shop: ModuleType,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> AsyncIterator[Deployment]:
    """SHOP served by a provider in this process, imported and open."""
    with _closed_tenant(monkeypatch, operator, tmp_path):
        async with deployed(zookeeper, operator.tenant, shop) as found:
            yield found


async def _post(page: Page, console: Console, form: dict[str, str]) -> tuple[int, str]:
    """A POST made by hand (with the page's cookie), past what the form offers."""
    answer = await page.request.post(f"{console.url}/services/SHOP/call", form=form)
    return answer.status, await answer.text()


async def test_a_unary_method_tried_from_the_service_page_shows_the_reply_json(
    page: Page,
    console: Console,
    operator: Operator,
    served: Deployment,
    shop: ModuleType,  # noqa: F811
) -> None:
    await LoginPage(page, console.url).log_in_as(operator)
    await ServicePage(page, console.url).open("SHOP")
    calls = await CallPage(page, console.url).open_from_service_page(GET_ITEM)
    assert await calls.selected() == GET_ITEM
    assert await calls.json_text() == "{}"
    assert (await calls.options())[GET_ITEM] is True
    before = shop.Shop.calls

    assert await calls.call('{"id": "7", "loud": true}') == 200
    assert await calls.answer() == "200 OK"
    assert json.loads(await calls.reply()) == {
        "id": "7",  # int64 as a string, enums by name, defaults shown: the gateway's JSON
        "displayName": "item 7",
        "color": "RED",
        "count": 0,
        "inStock": False,
        "tags": [],
    }
    assert await calls.elapsed_ms() > 0
    assert shop.Shop.calls == before + 1
    await calls.screenshot("try-call")

    # The provider's refusal, as the gateway answers it: status, code, its message.
    assert await calls.call('{"id": 8, "fail_with": "NOT_FOUND"}') == 200
    assert await calls.answer() == "404 NOT_FOUND"
    assert await calls.reply() == "asked to fail: 8"
    assert shop.Shop.calls == before + 2


async def test_bad_json_is_refused_naming_the_reason_and_nothing_is_sent(
    page: Page,
    console: Console,
    operator: Operator,
    served: Deployment,
    shop: ModuleType,  # noqa: F811
) -> None:
    await LoginPage(page, console.url).log_in_as(operator)
    calls = await CallPage(page, console.url).open("SHOP", GET_ITEM)
    before = shop.Shop.calls

    assert await calls.call('{"id": ') == 400
    assert (await calls.error()).startswith("json: invalid JSON")
    assert await calls.json_text() == '{"id":', "the form again, as it was filled"
    assert await calls.selected() == GET_ITEM

    assert await calls.call('{"colour": 1}') == 400
    assert "colour" in await calls.error()
    assert await calls.call('{"id": "seven"}') == 400
    assert "id" in await calls.error()
    assert await calls.call("[1, 2]") == 400
    assert "expected a JSON object" in await calls.error()
    assert await calls.call("{}", seconds="31") == 400
    assert (await calls.error()).startswith("timeout:")
    assert await calls.call("{}", seconds="nan") == 400
    too_big = json.dumps({"display_name": "x" * MAX_REQUEST_CHARS})
    status, text = await _post(
        page,
        console,
        {"csrf_token": await calls.csrf_token(), "method": GET_ITEM, "json": too_big},
    )
    assert status == 400 and "json: at most" in text
    assert shop.Shop.calls == before, "no call reached the provider"


async def test_a_closed_service_or_a_streaming_method_cannot_be_tried(
    page: Page,
    console: Console,
    operator: Operator,
    served: Deployment,
    shop: ModuleType,  # noqa: F811
) -> None:
    await served.run(lambda admin: admin.transition("SHOP", "close"))
    await LoginPage(page, console.url).log_in_as(operator)
    calls = await CallPage(page, console.url).open("SHOP", GET_ITEM)
    options = await calls.options()
    assert options == dict.fromkeys(options, False) and GET_ITEM in options
    before = shop.Shop.calls

    # The form offers neither; a hand-made POST is refused all the same.
    token = await calls.csrf_token()
    form = {"csrf_token": token, "method": GET_ITEM, "json": "{}", "timeout": "5"}
    status, text = await _post(page, console, form)
    assert status == 400 and "shop.Shop is online, not open" in text
    status, _ = await _post(page, console, {**form, "csrf_token": "forged"})
    assert status == 403

    await served.run(lambda admin: admin.transition("SHOP", "open"))
    status, text = await _post(page, console, {**form, "method": LIST_ITEMS})
    assert status == 400 and "only unary methods can be tried" in text
    status, text = await _post(page, console, {**form, "method": "shop.Shop/Nothing"})
    assert status == 400 and "is not a method of SHOP" in text
    assert shop.Shop.calls == before, "no call reached the provider"
    status, text = await _post(page, console, form)
    assert status == 200 and "200 OK" in text, "open again: the same request is sent"
    assert shop.Shop.calls == before + 1


async def test_the_console_calls_as_its_own_app_and_logout_ends_its_session(
    page: Page,
    console: Console,
    operator: Operator,
    operator_kazoo: KazooClient,
    served: Deployment,
) -> None:
    rule = b'{"schema": 1, "timeout_ms": 3000}'
    await served.run(lambda admin: admin.set_rule("SHOP", "timeout", rule))
    await LoginPage(page, console.url).log_in_as(operator)
    calls = await CallPage(page, console.url).open("SHOP", GET_ITEM)
    assert await calls.call('{"id": 1}') == 200
    assert await calls.answer() == "200 OK"

    where = applied_path(operator.tenant, "SHOP", "timeout")

    def the_console_s() -> list[str]:
        try:
            processes = operator_kazoo.get_children(where)
        except NoNodeError:  # no process has told yet
            return []
        return [name for name in processes if name.startswith("console-")]

    await wait_until(lambda: len(the_console_s()) == 1, 10, "the console's applied node")
    data, _ = operator_kazoo.get(f"{where}/{the_console_s()[0]}")
    assert json.loads(data)["app"] == "csf-console"

    await page.click("#logout")
    await page.wait_for_url("**/login")
    await wait_until(lambda: not the_console_s(), 10, "the console's session ended")


async def test_a_provider_checking_callers_refuses_the_console_and_the_page_says_so(
    page: Page,
    console: Console,
    operator: Operator,
    zookeeper: LocalZooKeeper,
    shop: ModuleType,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    auth = csf.CallerAuth(secrets={"someone-else": "another-secret-0123456789"})
    with _closed_tenant(monkeypatch, operator, tmp_path):
        async with deployed(zookeeper, operator.tenant, shop, auth):
            await LoginPage(page, console.url).log_in_as(operator)
            calls = await CallPage(page, console.url).open("SHOP", GET_ITEM)
            assert await calls.call('{"id": 1}') == 200
            assert await calls.answer() == "401 UNAUTHENTICATED"
            assert await calls.reply() == "the service refused the caller's credentials"
