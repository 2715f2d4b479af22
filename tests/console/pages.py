"""Page objects: each console page's selectors and actions in one place (as the APISIX
dashboard's e2e suite keeps them), so that tests read as an operator's steps."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page

from tests.console.conftest import SCREENSHOTS, Operator


class ConsolePage:
    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base

    async def error(self) -> str:
        return (await self.page.locator("#error").inner_text()).strip()

    async def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


class LoginPage(ConsolePage):
    async def open(self) -> LoginPage:
        await self.page.goto(f"{self.base}/login")
        return self

    async def log_in(self, tenant: str, user: str, password: str) -> None:
        await self.page.fill("#tenant-field", tenant)
        await self.page.fill("#user-field", user)
        await self.page.fill("#password-field", password)
        await self.page.click("#login-button")

    async def log_in_as(self, operator: Operator) -> ServicesPage:
        await self.open()
        await self.log_in(operator.tenant, operator.user, operator.password)
        await self.page.wait_for_url("**/services")
        return ServicesPage(self.page, self.base)


class ServicesPage(ConsolePage):
    async def open(self, query: str = "", page: int = 1) -> ServicesPage:
        await self.page.goto(f"{self.base}/services?q={query}&page={page}")
        return self

    async def codes(self) -> list[str]:
        return await self.page.locator("#services tbody tr").evaluate_all(
            "rows => rows.map(row => row.dataset.service)"
        )

    async def count_line(self) -> str:
        return await self.page.locator("#service-count").inner_text()

    async def search(self, query: str) -> None:
        await self.page.fill("#search", query)
        await self.page.click("#search-form button")

    async def next(self) -> None:
        await self.page.click("#next")

    async def status_of(self, code: str) -> str:
        return await self.page.locator(f'tr[data-service="{code}"] td.status').inner_text()


class ServicePage(ConsolePage):
    async def open(self, code: str) -> ServicePage:
        await self.page.goto(f"{self.base}/services/{code}")
        return self

    async def offered(self) -> set[str]:
        """The lifecycle actions whose buttons are enabled."""
        buttons = self.page.locator("#lifecycle button:not([disabled])")
        return set(await buttons.evaluate_all("buttons => buttons.map(b => b.value)"))

    async def act(self, action: str) -> None:
        await self.page.click(f"#action-{action}")

    async def status_of(self, grpc_service: str) -> str:
        cell = self.page.locator(f'tr[data-grpc-service="{grpc_service}"] td.status')
        return await cell.inner_text()

    async def status_of_now(self, grpc_service: str, expected: str) -> bool:
        """Whether the page shows `expected` for `grpc_service` now (for polling)."""
        cell = self.page.locator(f'tr[data-grpc-service="{grpc_service}"] td.status')
        return await cell.count() == 1 and (await cell.inner_text()) == expected

    def provider(self, address: str) -> object:
        return self.page.locator(f'#providers tr[data-address="{address}"]')


class ImportPage(ConsolePage):
    async def open(self) -> ImportPage:
        await self.page.goto(f"{self.base}/import")
        return self

    async def preview(self, file: Path) -> None:
        await self.page.set_input_files("#descriptor-file", str(file))
        await self.page.click("#preview-button")

    async def planned(self) -> list[str]:
        return await self.page.locator("#planned tbody tr").all_inner_texts()

    async def confirm(self) -> None:
        await self.page.click("#confirm-button")


class AppsPage(ConsolePage):
    async def open(self) -> AppsPage:
        await self.page.goto(f"{self.base}/apps")
        return self

    async def add(self, app: str, description: str = "") -> None:
        await self.page.fill("#app-name", app)
        await self.page.fill("#app-description", description)
        await self.page.click("#add-app-button")

    async def subscribe(self, app: str, code: str) -> None:
        row = self.page.locator(f'tr[data-app="{app}"]')
        await row.locator(".subscribe-service").fill(code)
        await row.locator(".subscribe-button").click()

    async def unsubscribe(self, app: str, code: str) -> None:
        row = self.page.locator(f'tr[data-app="{app}"]')
        await row.locator(f'[data-unsubscribe="{code}"]').click()

    async def subscribed(self, app: str) -> str:
        return await self.page.locator(f'tr[data-app="{app}"] td').nth(2).inner_text()


class RulePage(ConsolePage):
    async def open(self, code: str, kind: str) -> RulePage:
        await self.page.goto(f"{self.base}/services/{code}/rules/{kind}")
        return self

    async def fill_form(self, **values: str) -> None:
        for name, value in values.items():
            await self.page.fill(f"#field-{name}", value)
        await self.page.click("#form-save")

    async def submit_json(self, text: str) -> None:
        await self.page.fill("#json-field", text)
        await self.page.click("#json-save")

    async def diff(self) -> str:
        return await self.page.locator("#diff").inner_text()

    async def confirm(self) -> None:
        await self.page.click("#confirm-button")

    async def version(self) -> str:
        return await self.page.locator("#rule-version").inner_text()

    async def applied(self) -> str:
        return await self.page.locator("#applied").inner_text()

    async def delete(self) -> None:
        self.page.once("dialog", lambda dialog: dialog.accept())
        await self.page.click("#delete-button")


class HistoryPage(ConsolePage):
    async def open(self, code: str, kind: str) -> HistoryPage:
        await self.page.goto(f"{self.base}/services/{code}/rules/{kind}/history")
        return self

    async def versions(self) -> list[str]:
        return await self.page.locator("#history tbody tr").evaluate_all(
            "rows => rows.map(row => row.dataset.version)"
        )

    async def roll_back_to(self, version: int) -> None:
        await self.page.click(f'button.rollback[data-version="{version}"]')


class ServiceLivePage(ServicePage):
    """The service page's live view: its figures, breaker and providers' health, read
    without waiting (the tests poll them)."""

    async def figure(self, chart: str) -> str:
        found = await self.page.locator(f"#figure-{chart}").all_inner_texts()
        return found[0] if found else ""

    async def breaker(self) -> str:
        found = await self.page.locator("#breaker-state").all_inner_texts()
        return found[0] if found else ""

    async def chart_points(self, chart: str) -> str:
        found = self.page.locator(f"#chart-{chart} polyline")
        return await found.get_attribute("points") or "" if await found.count() else ""

    async def health(self) -> dict[str, str]:
        """Each provider row's health, by address."""
        rows: list[list[str]] = await self.page.locator(
            "#providers tbody tr[data-address]"
        ).evaluate_all("rows => rows.map(row => [row.dataset.address, row.cells[8].innerText])")
        return {address: health for address, health in rows}


class CallPage(ConsolePage):
    async def open(self, code: str, method: str = "") -> CallPage:
        await self.page.goto(f"{self.base}/services/{code}/call?method={method}")
        return self

    async def open_from_service_page(self, method: str) -> CallPage:
        """Follow the service page's "try a call" link of `method` (pkg.Service/Method)."""
        await self.page.click(f'a.try-call[href$="{method.replace("/", "%2F")}"]')
        await self.page.wait_for_url("**/call?method=*")
        return self

    async def options(self) -> dict[str, bool]:
        """Each listed method, and whether it can be chosen."""
        found: dict[str, bool] = await self.page.locator("#method-field option").evaluate_all(
            "options => Object.fromEntries(options.map(o => [o.value, !o.disabled]))"
        )
        return found

    async def call(self, json_text: str, seconds: str = "5") -> int:
        """Send the request; the status the console answered with."""
        await self.page.fill("#call-json", json_text)
        await self.page.fill("#call-timeout", seconds)
        async with self.page.expect_navigation() as navigation:
            await self.page.click("#call-button")
        response = await navigation.value
        assert response is not None
        return response.status

    async def selected(self) -> str:
        return await self.page.locator("#method-field").input_value()

    async def json_text(self) -> str:
        return await self.page.locator("#call-json").input_value()

    async def answer(self) -> str:
        return (await self.page.locator("#call-status").inner_text()).strip()

    async def reply(self) -> str:
        return await self.page.locator("#call-reply").inner_text()

    async def elapsed_ms(self) -> float:
        return float(await self.page.locator("#call-elapsed").inner_text())

    async def csrf_token(self) -> str:
        token = await self.page.locator("#call-form input[name=csrf_token]").get_attribute("value")
        assert token is not None
        return token
