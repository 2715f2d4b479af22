"""GET/POST /login and POST /logout."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from csf.console.sessions import LoginRefused
from csf.console.web import COOKIE, Refusal, checked_form, done, login_of, logins, render

LOGIN_COOKIE = "csf_console_login"
"""Before a login there is no session to hold a CSRF token: the login form's token is
also set as this cookie (SameSite=Strict, so another site's form cannot send it), and a
POST /login must bring both, equal (so nobody logs a browser into their own tenant)."""


def _login_page(
    request: Request, context: dict[str, str] | None = None, status: int = 200
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", {**(context or {}), "login_token": token}, status)
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    token, expected = form.get("csrf_token"), request.cookies.get(LOGIN_COOKIE, "")
    if not (isinstance(token, str) and token.isascii() and expected.isascii() and expected):
        raise Refusal("the login form's csrf_token is missing: open /login again", 403)
    if not hmac.compare_digest(token, expected):
        raise Refusal("the login form's csrf_token is not this browser's: open /login again", 403)
    values = {name: form.get(name, "") for name in ("tenant", "user", "password")}
    if not all(isinstance(value, str) for value in values.values()):
        return _login_page(request, {"error": "expected text fields"}, 400)
    # The tenant is a name; a user or password is taken as typed (spaces are characters).
    tenant, user, password = (
        str(values["tenant"]).strip(),
        str(values["user"]),
        str(values["password"]),
    )
    try:
        opened = await logins(request).login(tenant, user, password)
    except LoginRefused as exc:
        return _login_page(request, {"error": str(exc), "tenant": tenant[:128]}, 400)
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
    return response
