"""GET /events: Server-Sent Events carrying an open page's live parts.

The page names what it shows (`view` and its parameters); every `refresh_s` the parts
are rendered again from ZooKeeper and sent only when they changed, as one JSON object
`{element id: html}` that the page's script puts in place. The parts are the same
autoescaped templates the page was rendered with.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from markupsafe import escape
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from csf.console.live_parts import for_view
from csf.console.sessions import Login
from csf.console.web import SECURITY_HEADERS, Refusal, login_of

KEEPALIVE_S = 15.0
MAX_STREAMS = 8  # live pages open at once per login: each reads ZooKeeper twice a second
logger = logging.getLogger("csf.console")


async def events(request: Request) -> Response:
    login = login_of(request)
    parts = for_view(request, login)
    if parts is None:
        raise Refusal("events: unknown view")
    if login.streams >= MAX_STREAMS:
        raise Refusal(f"events: at most {MAX_STREAMS} live pages a login", 429)
    refresh_s: float = request.app.state.settings.refresh_s
    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _stream(request, login, parts, refresh_s), media_type="text/event-stream", headers=headers
    )


async def _stream(
    request: Request,
    login: Login,
    parts: Callable[[], Awaitable[dict[str, str]]],
    refresh_s: float,
) -> AsyncIterator[str]:
    login.streams += 1
    try:
        async for event in _changes(request, login, parts, refresh_s):
            yield event
    finally:
        login.streams -= 1


async def _changes(
    request: Request,
    login: Login,
    parts: Callable[[], Awaitable[dict[str, str]]],
    refresh_s: float,
) -> AsyncIterator[str]:
    sent: dict[str, str] = {}
    quiet = 0.0
    logins = request.app.state.logins
    while not await request.is_disconnected() and logins.find_id(login.id) is not None:
        try:
            current = await parts()
        except Refusal as exc:
            current = {"live-error": str(escape(str(exc)))}  # HTML: the script sets it so
        except Exception:  # a bug must not end every open page's updates: shown, logged
            logger.exception("the live parts of %s failed", request.url.path)
            current = {"live-error": "this page's live parts failed; see the console's log"}
        current.setdefault("live-error", "")
        changed = {key: html for key, html in current.items() if sent.get(key) != html}
        if changed:
            sent.update(changed)
            quiet = 0.0
            yield f"data: {json.dumps(changed)}\n\n"
        elif quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(refresh_s)
        quiet += refresh_s
