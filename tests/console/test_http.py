"""The console's HTTP contract (DESIGN section 7) without a browser: every POST needs the
login's CSRF token, a refused action answers 400 (403 for a node that is not the
tenant's) with the reason, a done one redirects, and the cookie holds only an id."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl
from starlette.routing import Route

from csf.console import ConsoleSettings, create_app
from csf.registry.paths import apps_path, rule_path, tenant_path
from csf.testing.zookeeper import LocalZooKeeper
from tests.console.conftest import Console, Operator, OperatorCli, serving

POST_ROUTES = sorted(
    route.path
    for route in create_app(ConsoleSettings("zk://127.0.0.1:1")).routes
    if isinstance(route, Route) and "POST" in (route.methods or ())
)


async def log_in(
    client: httpx.AsyncClient, tenant: str, user: str, password: str
) -> httpx.Response:
    """POST /login as the login form does: with the token the form (and its cookie) carry."""
    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    fields = {"tenant": tenant, "user": user, "password": password, "csrf_token": token.group(1)}
    return await client.post("/login", data=fields)


async def _logged_in(console: Console, operator: Operator) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=console.url)
    answer = await log_in(client, operator.tenant, operator.user, operator.password)
    assert answer.status_code == 303 and answer.headers["location"] == "/services"
    page = await client.get("/services")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return client, token.group(1)


@pytest_asyncio.fixture(loop_scope="session")
async def client(
    console: Console, operator: Operator
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    logged_in = await _logged_in(console, operator)
    yield logged_in
    await logged_in[0].aclose()


async def test_every_post_without_the_csrf_token_is_403_and_writes_nothing(
    client: tuple[httpx.AsyncClient, str], operator_kazoo: KazooClient, operator: Operator
) -> None:
    http, _ = client
    assert "/login" in POST_ROUTES and len(POST_ROUTES) >= 12
    before = operator_kazoo.get_children(tenant_path(operator.tenant))
    for path in POST_ROUTES:
        if path == "/login":
            continue
        concrete = path.replace("{code}", "XIESR").replace("{kind}", "timeout")
        concrete = concrete.replace("{app}", "web")
        fields = {"app": "web", "action": "online", "json": '{"schema": 1}', "version": "0"}
        for token in ({}, {"csrf_token": "a-guess-of-43-characters-0123456789abcdefgh"}):
            answer = await http.post(concrete, data={**fields, **token})
            assert answer.status_code == 403, (path, token, answer.status_code)
    not_ascii = await http.post("/apps", data={"app": "web", "csrf_token": "t\u00f6ken"})
    assert not_ascii.status_code == 403
    assert operator_kazoo.get_children(tenant_path(operator.tenant)) == before
    assert (await http.get("/services")).status_code == 200  # still logged in


async def test_the_cookie_is_an_opaque_signed_id_marked_httponly_and_samesite_strict(
    console: Console, operator: Operator
) -> None:
    async with httpx.AsyncClient(base_url=console.url) as http:
        answer = await log_in(http, operator.tenant, operator.user, operator.password)
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        value = cookie.split(";")[0].split("=", 1)[1]
        assert operator.tenant not in value and operator.password not in value
        login_id, signature = value.rsplit(".", 1)
        forged = f"{login_id}.{'0' * len(signature)}"
    async with httpx.AsyncClient(base_url=console.url, cookies={"csf_console": forged}) as http:
        answer = await http.get("/services")
        assert answer.status_code == 303 and answer.headers["location"] == "/login"


async def test_a_refused_action_is_400_with_the_reason_and_a_done_one_redirects(
    client: tuple[httpx.AsyncClient, str],
    cli: OperatorCli,
    xiesr: str,
    operator_kazoo: KazooClient,
    operator: Operator,
) -> None:
    http, token = client
    refused = await http.post(
        "/services/XIESR/lifecycle", data={"action": "open", "csrf_token": token}
    )
    assert refused.status_code == 400
    assert "&#39;open&#39; needs it to be online" in refused.text
    unknown = await http.post(
        "/services/XIESR/lifecycle", data={"action": "explode", "csrf_token": token}
    )
    assert unknown.status_code == 400 and "is not one of" in unknown.text
    done = await http.post(
        "/services/XIESR/lifecycle", data={"action": "online", "csrf_token": token}
    )
    assert done.status_code == 303 and done.headers["location"] == "/services/XIESR"
    added = await http.post("/apps", data={"app": "web", "csrf_token": token})
    assert added.status_code == 303
    assert operator_kazoo.exists(f"{apps_path(operator.tenant)}/web") is not None
    bad_name = await http.post("/apps", data={"app": "../x", "csrf_token": token})
    assert bad_name.status_code == 400 and "not a valid name" in bad_name.text


async def test_a_node_of_someone_else_under_the_tenant_is_403(
    client: tuple[httpx.AsyncClient, str], operator_kazoo: KazooClient, operator: Operator
) -> None:
    http, _ = client
    foreign = [make_digest_acl("intruder", "their-password", all=True)]
    operator_kazoo.create(f"{tenant_path(operator.tenant)}/FOREIGN", b"", acl=foreign)
    answer = await http.get("/services/FOREIGN")
    assert answer.status_code == 403
    assert "do not grant access" in answer.text


async def test_the_pages_own_style_and_script_are_served_from_the_package(
    console: Console,
) -> None:
    async with httpx.AsyncClient(base_url=console.url) as http:
        script, style = await http.get("/static/console.js"), await http.get("/static/console.css")
        missing = await http.get("/static/other.js")
    assert script.status_code == 200 and "EventSource" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404


async def test_logout_closes_the_login(client: tuple[httpx.AsyncClient, str]) -> None:
    http, token = client
    assert (await http.post("/logout", data={"csrf_token": token})).status_code == 303
    answer = await http.get("/services")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


async def test_an_identity_with_less_than_every_permission_on_the_root_cannot_log_in(
    console: Console, operator: Operator, operator_kazoo: KazooClient
) -> None:
    viewer = make_digest_acl("viewer", "viewer-password", read=True)
    acls, stat = operator_kazoo.get_acls(tenant_path(operator.tenant))
    operator_kazoo.set_acls(tenant_path(operator.tenant), [*acls, viewer], stat.aversion)
    async with httpx.AsyncClient(base_url=console.url) as http:
        answer = await log_in(http, operator.tenant, "viewer", "viewer-password")
    assert answer.status_code == 400 and "not accepted" in answer.text


async def test_a_rule_changed_between_its_diff_and_its_confirm_is_not_overwritten(
    client: tuple[httpx.AsyncClient, str],
    cli: OperatorCli,
    xiesr: str,
    operator_kazoo: KazooClient,
    operator: Operator,
) -> None:
    http, token = client
    preview = await http.post(
        "/services/XIESR/rules/timeout",
        data={"json": '{"schema": 1, "timeout_ms": 100}', "csrf_token": token},
    )
    assert preview.status_code == 200
    confirm = re.search(r'name="token" value="([^"]+)"', preview.text)
    assert confirm is not None
    await cli("rule", "set", "XIESR", "timeout", "--json", '{"schema": 1, "timeout_ms": 900}')
    answer = await http.post(
        "/services/XIESR/rules/timeout/confirm",
        data={"token": confirm.group(1), "csrf_token": token},
    )
    assert answer.status_code == 400 and "nothing was written" in answer.text
    data, _ = operator_kazoo.get(rule_path(operator.tenant, "XIESR", "timeout"))
    assert json.loads(data)["timeout_ms"] == 900


async def test_oversized_or_unmeasured_posts_are_refused_before_they_are_read(
    console: Console,
) -> None:
    async with httpx.AsyncClient(base_url=console.url) as http:
        large = await http.post("/login", data={"tenant": "t" * 20_000})
        huge = await http.post("/apps", content=b"x" * (5 * 1024 * 1024))

        async def chunks() -> AsyncIterator[bytes]:
            yield b"tenant=a"

        unmeasured = await http.post("/login", content=chunks())
        forged = await http.post("/login", data={"tenant": "t", "csrf_token": "x"})
        await http.get("/login")  # this browser's token, in its cookie
        guessed = await http.post("/login", data={"tenant": "t", "csrf_token": "x" * 43})
    assert (large.status_code, huge.status_code, unmeasured.status_code) == (413, 413, 411)
    assert forged.status_code == 403 and "csrf_token" in forged.text
    assert guessed.status_code == 403 and "not this browser" in guessed.text


async def test_logins_in_use_are_never_closed_to_make_room(
    zookeeper: LocalZooKeeper, operator: Operator
) -> None:
    settings = ConsoleSettings(f"zk://{zookeeper.hosts}", max_logins=1)
    async with (
        serving(settings) as small,
        httpx.AsyncClient(base_url=small.url) as first,
        httpx.AsyncClient(base_url=small.url) as second,
    ):
        credentials = (operator.tenant, operator.user, operator.password)
        assert (await log_in(first, *credentials)).status_code == 303
        refused = await log_in(second, *credentials)
        assert refused.status_code == 400 and "busy" in refused.text
        assert (await first.get("/services")).status_code == 200


async def test_hostile_rule_json_and_a_diff_confirmed_for_another_service_write_nothing(
    client: tuple[httpx.AsyncClient, str],
    xiesr: str,
    operator_kazoo: KazooClient,
    operator: Operator,
) -> None:
    http, token = client
    deep = "[" * 100_000 + "]" * 100_000
    for text in (deep, '{"schema": 1, "timeout_ms": 1e999}', '{"schema": 1, "timeout_ms": NaN}'):
        answer = await http.post(
            "/services/XIESR/rules/timeout", data={"json": text, "csrf_token": token}
        )
        assert answer.status_code == 400, answer.text[:200]
    deep_field = await http.post(
        "/services/XIESR/rules/timeout", data={"timeout_ms": "[" * 4000, "csrf_token": token}
    )
    assert deep_field.status_code == 400
    preview = await http.post(
        "/services/XIESR/rules/timeout",
        data={"json": '{"schema": 1, "timeout_ms": 100}', "csrf_token": token},
    )
    found = re.search(r'name="token" value="([^"]+)"', preview.text)
    assert found is not None
    # OTHER exists (a provider's cluster node): a rule could be written there.
    operator_kazoo.create(f"{tenant_path(operator.tenant)}/OTHER/clusters/c", makepath=True)
    elsewhere = await http.post(
        "/services/OTHER/rules/timeout/confirm", data={"token": found.group(1), "csrf_token": token}
    )
    assert elsewhere.status_code == 400
    assert operator_kazoo.exists(rule_path(operator.tenant, "XIESR", "timeout")) is None
    assert operator_kazoo.exists(rule_path(operator.tenant, "OTHER", "timeout")) is None


async def test_only_an_added_app_can_subscribe(
    client: tuple[httpx.AsyncClient, str], operator_kazoo: KazooClient, operator: Operator
) -> None:
    http, token = client
    answer = await http.post(
        "/apps/ghost/subscriptions", data={"service": "XIESR", "csrf_token": token}
    )
    assert answer.status_code == 400 and "no app ghost" in answer.text
