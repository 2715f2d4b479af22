"""The console as an ASGI app: `create_app(settings)`, the routes of DESIGN section 7."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib import resources

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csf.console import (
    app_pages,
    call_pages,
    events,
    import_pages,
    login_pages,
    rule_pages,
    service_pages,
)
from csf.console.body_limit import BodyLimit
from csf.console.metrics import LiveMetrics
from csf.console.sessions import Logins
from csf.console.settings import ConsoleSettings
from csf.console.web import NotLoggedIn, Refusal, done, render

RULE = "/services/{code}/rules/{kind}"


# The console's own style and script, read once from the package: however it is installed
# (a wheel, a strict editable install's links), they are served from memory.
STATIC = {
    name: (resources.files("csf.console").joinpath("static", name).read_bytes(), media_type)
    for name, media_type in (
        ("console.css", "text/css; charset=utf-8"),
        ("console.js", "text/javascript; charset=utf-8"),
    )
}


async def _static_file(request: Request) -> Response:
    found = STATIC.get(request.path_params["name"])
    if found is None:
        return Response(status_code=404)
    content, media_type = found
    return Response(content, media_type=media_type, headers={"Cache-Control": "max-age=300"})


async def _home(request: Request) -> Response:
    return done("/services")


async def _not_logged_in(request: Request, exc: Exception) -> Response:
    if request.method == "GET":
        return done("/login")
    # A POST without a login changes nothing: the same answer as a missing CSRF token.
    return render(request, "error.html", {"error": "log in first"}, 403)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    return render(request, "error.html", {"error": str(exc)}, exc.status)


def create_app(settings: ConsoleSettings) -> Starlette:
    """The console over `settings.registry`; each login opens its own ZooKeeper session."""
    url = settings.zookeeper
    logins = Logins(
        url,
        open_tenants=settings.open_tenants,
        idle_s=settings.idle_s,
        max_logins=settings.max_logins,
    )
    live_metrics = LiveMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logins.start()
        try:
            yield
        finally:
            await logins.close()
            await live_metrics.close()

    routes = [
        Route("/", _home),
        Route("/login", login_pages.login_form, methods=["GET"]),
        Route("/login", login_pages.login, methods=["POST"]),
        Route("/logout", login_pages.logout, methods=["POST"]),
        Route("/services", service_pages.services),
        Route("/services/{code}", service_pages.service),
        Route("/services/{code}/lifecycle", service_pages.lifecycle, methods=["POST"]),
        Route("/services/{code}/call", call_pages.call_form, methods=["GET"]),
        Route("/services/{code}/call", call_pages.call, methods=["POST"]),
        Route("/import", import_pages.import_form, methods=["GET"]),
        Route("/import", import_pages.preview, methods=["POST"]),
        Route("/import/confirm", import_pages.confirm, methods=["POST"]),
        Route("/apps", app_pages.apps, methods=["GET"]),
        Route("/apps", app_pages.add_app, methods=["POST"]),
        Route("/apps/{app}/subscriptions", app_pages.subscribe, methods=["POST"]),
        Route("/apps/{app}/subscriptions/{code}/delete", app_pages.unsubscribe, methods=["POST"]),
        Route(RULE, rule_pages.rule, methods=["GET"]),
        Route(RULE, rule_pages.preview, methods=["POST"]),
        Route(RULE + "/confirm", rule_pages.confirm, methods=["POST"]),
        Route(RULE + "/history", rule_pages.history),
        Route(RULE + "/rollback", rule_pages.rollback, methods=["POST"]),
        Route(RULE + "/delete", rule_pages.delete, methods=["POST"]),
        Route("/events", events.events),
        Route("/static/{name}", _static_file),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(BodyLimit)],
        exception_handlers={NotLoggedIn: _not_logged_in, Refusal: _refused},
        lifespan=lifespan,
    )
    app.state.logins = logins
    app.state.live_metrics = live_metrics
    app.state.settings = settings
    return app
