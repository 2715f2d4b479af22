"""GET/POST /apps (the tenant's apps, each with its subscriptions), and
POST /apps/<app>/subscriptions (`service`) and .../subscriptions/<code>/delete."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from csf.console.reads import valid_name
from csf.console.web import Refusal, checked_form, done, field, in_thread, login_of, render
from csf.registry.admin import MAX_DESCRIPTION, RegistryAdmin


def _apps_view(admin: RegistryAdmin) -> dict[str, Any]:
    subscribed = admin.subscribed(code for code in admin.services() if valid_name(code))
    return {
        "apps": [
            {
                "name": name,
                "description": str(document.get("description", ""))[:MAX_DESCRIPTION],
                "subscribed": sorted(subscribed.get(name, [])),
            }
            for name, document in admin.apps().items()
        ],
    }


async def apps(request: Request) -> Response:
    login = login_of(request)
    view = await in_thread(login, _apps_view, login.admin)
    return render(request, "apps.html", view)


async def add_app(request: Request) -> Response:
    login = login_of(request)
    form = await checked_form(request, login)
    await in_thread(
        login, login.admin.add_app, field(form, "app", 128), field(form, "description", 500)
    )
    return done("/apps")


async def subscribe(request: Request) -> Response:
    login = login_of(request)
    form = await checked_form(request, login)
    app = request.path_params["app"]
    if not await in_thread(login, login.admin.has_app, app):
        raise Refusal(f"no app {app}: add it first")
    await in_thread(login, login.admin.subscribe, app, field(form, "service", 128))
    return done("/apps")


async def unsubscribe(request: Request) -> Response:
    login = login_of(request)
    await checked_form(request, login)
    app, code = request.path_params["app"], request.path_params["code"]
    await in_thread(login, login.admin.unsubscribe, app, code)
    return done("/apps")
