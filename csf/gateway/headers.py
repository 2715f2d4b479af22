"""The request headers the gateway reads besides the signature: the caller's deadline and
SET key. Any value gives a bounded result or HttpError 400 naming the header."""

from __future__ import annotations

import contextlib
import math

from csf.gateway.errors import HttpError

TIMEOUT_HEADER = "x-csf-timeout"
SET_KEY_HEADER = "x-csf-set-key"
MAX_SET_KEY = 256
_MAX_TIMEOUT_TEXT = 32


def deadline(given: str | None, maximum: float) -> float:
    """Seconds the call may take: `X-Csf-Timeout` (decimal seconds > 0), never more than
    `maximum`, which is also the default."""
    if given is None:
        return maximum
    seconds = math.nan
    if len(given) <= _MAX_TIMEOUT_TEXT:
        with contextlib.suppress(ValueError):
            seconds = float(given)
    if not (math.isfinite(seconds) and seconds > 0):
        raise HttpError(400, "INVALID_ARGUMENT", "X-Csf-Timeout: expected seconds > 0")
    return min(seconds, maximum)


def set_key(given: str | None) -> str | None:
    """`X-Csf-Set-Key`: 1 to 256 printable ASCII characters, or absent."""
    if given is None:
        return None
    if not (0 < len(given) <= MAX_SET_KEY and given.isascii() and given.isprintable()):
        raise HttpError(
            400, "INVALID_ARGUMENT", f"X-Csf-Set-Key: expected 1-{MAX_SET_KEY} printable ASCII"
        )
    return given
