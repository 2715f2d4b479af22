"""How a server stream's messages go out over HTTP, each one compact line of JSON:
NDJSON, one `{"result": ...}` per line and a failure as a last `{"error": ...}` line
(grpc-gateway's framing), or Server-Sent Events, `data: ...` per message and a failure
as `event: error`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csf.gateway.errors import HttpError, compact

SSE_MEDIA_TYPE = "text/event-stream"


@dataclass(frozen=True)
class Framing:
    media_type: str
    sse: bool

    def message(self, message: dict[str, Any]) -> bytes:
        if self.sse:
            return b"data: " + compact(message) + b"\n\n"
        return compact({"result": message}) + b"\n"

    def error(self, error: HttpError) -> bytes:
        shape = {"code": error.code, "message": error.message}
        if self.sse:
            return b"event: error\ndata: " + compact(shape) + b"\n\n"
        return compact({"error": shape}) + b"\n"


NDJSON = Framing("application/x-ndjson", sse=False)
SSE = Framing(SSE_MEDIA_TYPE, sse=True)


def framing_for(accept: str) -> Framing:
    """SSE when the caller accepts it, else NDJSON."""
    return SSE if SSE_MEDIA_TYPE in accept else NDJSON
