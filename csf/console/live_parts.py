"""The live parts of each page: what GET /events sends again when it changes.

Each page renders its live parts from the same partial templates, so the first paint
and every update are one code path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from csf.console import reads
from csf.console.charts import live_view
from csf.console.metrics import LiveMetrics
from csf.console.sessions import Login
from csf.console.web import TEMPLATES, in_thread

Parts = Callable[[], Awaitable[dict[str, str]]]


async def fragment(login: Login, name: str, context: dict[str, Any]) -> str:
    """A partial template rendered off the loop (a table may have thousands of rows)."""
    template = TEMPLATES.get_template(name)
    return await asyncio.to_thread(
        template.render, login=login, csrf_token=login.csrf_token, **context
    )


def for_view(request: Request, login: Login) -> Parts | None:
    """The parts of the page `view` names (None for an unknown view)."""
    params = request.query_params
    view = params.get("view")
    code = params.get("code", "")
    if view == "services":
        query, page = params.get("q", ""), reads.page_number(params.get("page", "1"))

        async def services() -> dict[str, str]:
            found = await in_thread(login, reads.service_page, login.admin, query, page)
            return {"services-live": await fragment(login, "_services_table.html", {"page": found})}

        return services
    if view == "service":
        live: LiveMetrics = request.app.state.live_metrics

        async def service() -> dict[str, str]:
            view = await in_thread(login, reads.service_view, login.admin, code)
            series, health = await live.scrape(login.id, code, view["providers"])
            providers = [{**p, "health": health[p["address"]]} for p in view["providers"]]
            view = {**view, "providers": providers, "metrics": live_view(series)}
            return {"service-live": await fragment(login, "_service_live.html", view)}

        return service
    if view == "rule":
        kind = params.get("kind", "")

        async def rule() -> dict[str, str]:
            view = await in_thread(login, reads.rule_view, login.admin, code, kind)
            return {"rule-live": await fragment(login, "_rule_live.html", view)}

        return rule
    return None
