"""The services: GET /services (search, pages), GET /services/<code>, and
POST /services/<code>/lifecycle (the transitions csf-registry allows, its messages)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from csf.console import reads
from csf.console.web import Refusal, checked_form, done, field, in_thread, login_of, render
from csf.registry.admin import LIFECYCLE


async def services(request: Request) -> Response:
    login = login_of(request)
    query = request.query_params.get("q", "")
    number = reads.page_number(request.query_params.get("page", "1"))
    page = await in_thread(login, reads.service_page, login.admin, query, number)
    return render(request, "services.html", {"page": page})


async def service(request: Request) -> Response:
    login = login_of(request)
    code = request.path_params["code"]
    view = await in_thread(login, reads.service_view, login.admin, code)
    return render(request, "service.html", view)


async def lifecycle(request: Request) -> Response:
    login = login_of(request)
    form = await checked_form(request, login)
    code = request.path_params["code"]
    action = field(form, "action", 32)
    if action not in LIFECYCLE:
        raise Refusal(f"action: {action!r} is not one of {', '.join(sorted(LIFECYCLE))}")
    await in_thread(login, login.admin.transition, code, action)
    return done(f"/services/{quote(code, safe='')}")
