"""How much a POST may send, checked before anything reads it.

A POST must say its length (Content-Length; the server then reads no more than that) and
stay within its route's limit: a login a few kilobytes, an import the descriptor file's
limit, any other form FORM_BYTES. Otherwise it is answered 411 or 413 and never parsed,
so nobody can make the console spool a large body to disk, logged in or not.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from csf.registry.cli import MAX_FILE_BYTES

LOGIN_BYTES = 16 * 1024
FORM_BYTES = 4 * 1024 * 1024
IMPORT_BYTES = MAX_FILE_BYTES + 64 * 1024  # the file and the multipart framing around it
LIMITS = {"/login": LOGIN_BYTES, "/import": IMPORT_BYTES}


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            refusal = _refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refusal(scope: Scope) -> PlainTextResponse | None:
    limit = LIMITS.get(scope["path"], FORM_BYTES)
    lengths = [value for name, value in scope["headers"] if name == b"content-length"]
    if len(lengths) != 1 or not lengths[0].isdigit():
        return PlainTextResponse("a POST must give one Content-Length", 411)
    if int(lengths[0]) > limit:
        return PlainTextResponse(f"the request is over {limit} bytes", 413)
    return None
