"""What every console page shares: the login, the CSRF check, templates, refusals.

Pages are server-rendered by Jinja2 with autoescape on: whatever ZooKeeper holds shows
as text. Every form carries the login's `csrf_token`; a POST without it is answered 403
before anything is read. A refused action is a `Refusal`: the page again with the
reason, status 400 (403 for another tenant's object). ZooKeeper is reached through the
login's own blocking client, in a worker thread: the loop never waits on it.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from kazoo.exceptions import KazooException, NoAuthError, NoNodeError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from csf._exceptions import ConfigError, RegistryError
from csf.console.sessions import Login, Logins
from csf.registry.admin import NotPermitted

T = TypeVar("T")
COOKIE = "csf_console"
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
TEMPLATES.filters["path"] = lambda value: quote(str(value), safe="")


def _when(at: object) -> str:
    """A Unix time as UTC text; whatever else a node holds, as a dash."""
    if not isinstance(at, int | float) or isinstance(at, bool) or not 0 <= at < 2**33:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


TEMPLATES.filters["when"] = _when


class Refusal(Exception):
    """An action the console refuses; the message says why, as the page shows it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class NotLoggedIn(Exception):
    """No live login: the answer is the login page."""


def logins(request: Request) -> Logins:
    found: Logins = request.app.state.logins
    return found


def login_of(request: Request) -> Login:
    login = logins(request).find(request.cookies.get(COOKIE))
    if login is None:
        raise NotLoggedIn()
    return login


async def checked_form(request: Request, login: Login, files: int = 0) -> FormData:
    """The POSTed form, once its `csrf_token` is the login's (else 403). A form with
    `files` must be closed by its reader (`await form.close()`)."""
    form = await request.form(max_files=files, max_fields=200)
    token = form.get("csrf_token")
    if (
        not isinstance(token, str)
        or not token.isascii()  # compare_digest takes ASCII text only; tokens are ASCII
        or not hmac.compare_digest(token, login.csrf_token)
    ):
        await form.close()
        raise Refusal("the form's csrf_token is missing or not this login's", 403)
    return form


def field(form: FormData, name: str, limit: int = 4096) -> str:
    """A text field of the form ("" when absent); a Refusal when it is too long."""
    value = form.get(name, "")
    if not isinstance(value, str):
        raise Refusal(f"{name}: expected a text field")
    if len(value) > limit:
        raise Refusal(f"{name}: at most {limit} characters")
    return value.strip()


async def in_thread(login: Login, operation: Callable[..., T], *args: Any) -> T:
    """Run a blocking admin operation; its refusals become Refusals naming the reason."""
    try:
        return await asyncio.to_thread(operation, *args)
    except NoAuthError:
        raise Refusal("ZooKeeper refused: that node is not this tenant's", 403) from None
    except NotPermitted as exc:
        raise Refusal(str(exc), 403) from None
    except (RegistryError, ConfigError) as exc:
        raise Refusal(str(exc)) from None
    except NoNodeError:
        raise Refusal("a node it needs was removed meanwhile: look at it again") from None
    except KazooException as exc:
        raise Refusal(f"ZooKeeper did not carry it out ({type(exc).__name__})", 503) from None


def render(
    request: Request, name: str, context: Mapping[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    login = logins(request).find(request.cookies.get(COOKIE))
    page = TEMPLATES.get_template(name).render(
        request=request,
        login=login,
        csrf_token=login.csrf_token if login else "",
        **(context or {}),
    )
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def done(url: str) -> Response:
    """Post/redirect/get: a done action sends the browser to the page showing it."""
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


SECURITY_HEADERS = {
    # The pages' own script and style only: an injected <script> would not run anyway.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
