"""Rules in the browser: a form and raw JSON, each validated as consumers validate, a
diff before saving, history and rollback, delete."""

from __future__ import annotations

import json

from kazoo.client import KazooClient
from playwright.async_api import Page

from csf.registry.paths import rule_path
from tests.conftest import wait_until
from tests.console.conftest import Console, Operator, OperatorCli
from tests.console.pages import HistoryPage, LoginPage, RulePage


def _rule(kazoo: KazooClient, tenant: str, kind: str) -> tuple[dict[str, object], int] | None:
    path = rule_path(tenant, "XIESR", kind)
    if kazoo.exists(path) is None:
        return None
    data, stat = kazoo.get(path)
    return json.loads(data), stat.version


async def test_a_form_edit_shows_the_diff_then_writes_keeping_what_the_form_does_not_show(
    page: Page,
    console: Console,
    operator: Operator,
    operator_kazoo: KazooClient,
    cli: OperatorCli,
    xiesr: str,
) -> None:
    with_method = {"schema": 1, "error_ratio": 0.5, "methods": {"SayHello": {"open_s": 9}}}
    await cli("rule", "set", "XIESR", "breaker", "--json", json.dumps(with_method))
    await LoginPage(page, console.url).log_in_as(operator)
    rules = await RulePage(page, console.url).open("XIESR", "breaker")
    assert await rules.version() == "version 0"

    await rules.fill_form(error_ratio="0.3", min_calls="50")
    diff = await rules.diff()
    assert '-  "error_ratio": 0.5' in diff and '+  "error_ratio": 0.3' in diff
    assert '+  "min_calls": 50' in diff
    assert _rule(operator_kazoo, operator.tenant, "breaker") == (with_method, 0)  # not yet
    await rules.screenshot("rule-diff")
    await rules.confirm()
    await page.wait_for_url("**/rules/breaker")
    written = _rule(operator_kazoo, operator.tenant, "breaker")
    assert written is not None
    document, version = written
    assert version == 1
    assert document["error_ratio"] == 0.3 and document["min_calls"] == 50
    assert document["methods"] == {"SayHello": {"open_s": 9}}  # the form kept it


async def test_invalid_rules_are_refused_naming_the_field_and_nothing_is_written(
    page: Page,
    console: Console,
    operator: Operator,
    operator_kazoo: KazooClient,
    cli: OperatorCli,
    xiesr: str,
) -> None:
    await LoginPage(page, console.url).log_in_as(operator)
    rules = await RulePage(page, console.url).open("XIESR", "retry")
    await rules.submit_json('{"schema": 1, "retries": -3}')
    assert "retries" in await rules.error()
    await rules.submit_json('{"schema": 1, "retrys": 3}')
    assert "unknown field 'retrys'" in await rules.error()
    await rules.submit_json('{"schema": 1, "methods": {"SayHelo": {"retries": 1}}}')
    assert "SayHelo" in await rules.error()
    await rules.submit_json("{not json")
    assert await rules.error()
    await rules.open("XIESR", "retry")
    await rules.fill_form(cluster="sideways")
    assert "cluster" in await rules.error()
    assert _rule(operator_kazoo, operator.tenant, "retry") is None


async def test_roll_back_to_a_kept_version_and_delete(
    page: Page,
    console: Console,
    operator: Operator,
    operator_kazoo: KazooClient,
    cli: OperatorCli,
    xiesr: str,
) -> None:
    await LoginPage(page, console.url).log_in_as(operator)
    rules = await RulePage(page, console.url).open("XIESR", "timeout")
    for timeout_ms in (100, 200, 300):
        await rules.submit_json(json.dumps({"schema": 1, "timeout_ms": timeout_ms}))
        await rules.confirm()
        await page.wait_for_url("**/rules/timeout")
    assert _rule(operator_kazoo, operator.tenant, "timeout") == (
        {"schema": 1, "timeout_ms": 300},
        2,
    )

    history = await HistoryPage(page, console.url).open("XIESR", "timeout")
    assert await history.versions() == ["2", "1", "0"]
    await history.screenshot("rule-history")
    await history.roll_back_to(0)
    await page.wait_for_url("**/rules/timeout")
    assert _rule(operator_kazoo, operator.tenant, "timeout") == (
        {"schema": 1, "timeout_ms": 100},
        3,
    )
    assert await rules.version() == "version 3"

    await rules.delete()
    await page.wait_for_url("**/services/XIESR")
    assert _rule(operator_kazoo, operator.tenant, "timeout") is None


async def test_a_rule_set_with_the_cli_shows_on_the_open_rule_page_within_2_s(
    page: Page, console: Console, operator: Operator, cli: OperatorCli, xiesr: str
) -> None:
    await LoginPage(page, console.url).log_in_as(operator)
    rules = await RulePage(page, console.url).open("XIESR", "concurrency")
    assert "no rule" in await rules.version()
    await cli("rule", "set", "XIESR", "concurrency", "--json", '{"schema": 1, "consumer": 7}')

    async def shown() -> bool:
        return await rules.version() == "version 0"

    took = await wait_until(shown, within=2.0, what="the CLI's rule on the open page")
    print(f"\nconsole: a rule set with csf-registry showed after {took:.2f} s")
