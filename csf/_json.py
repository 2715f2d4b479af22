"""Reading JSON documents that cross a boundary (znodes, rule pushes, snapshots)."""

from __future__ import annotations

import json
from typing import Any


def load_json_object(data: bytes, limit: int) -> dict[str, Any]:
    """A JSON object from at most `limit` bytes; ValueError saying what is wrong."""
    if len(data) > limit:
        raise ValueError(f"{len(data)} bytes is over {limit}")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object")
    return document
