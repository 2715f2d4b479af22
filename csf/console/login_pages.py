"""GET/POST /login and POST /logout."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from csf.console.sessions import LoginRefused
from csf.console.web import COOKIE, SECURITY_HEADERS, checked_form, done, login_of, logins, render


async def login_form(request: Request) -> Response:
    return render(request, "login.html")


async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    values = {name: form.get(name, "") for name in ("tenant", "user", "password")}
    if not all(isinstance(value, str) for value in values.values()):
        return render(request, "login.html", {"error": "expected text fields"}, 400)
    tenant, user, password = (str(values[name]).strip() for name in ("tenant", "user", "password"))
    try:
        opened = await logins(request).login(tenant, user, password)
    except LoginRefused as exc:
        return render(request, "login.html", {"error": str(exc), "tenant": tenant[:128]}, 400)
    response = done("/services")
    response.set_cookie(
        COOKIE,
        logins(request).cookie(opened),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    current = login_of(request)
    await checked_form(request, current)
    await logins(request).logout(current.id)
    response = done("/login")
    response.delete_cookie(COOKIE, path="/")
    response.headers.update(SECURITY_HEADERS)
    return response
