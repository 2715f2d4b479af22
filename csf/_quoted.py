"""Quoting a refused value in an error message: enough to recognise it, never a flood."""

from __future__ import annotations

QUOTE_LIMIT = 80


def quoted(value: object) -> str:
    """`repr(value)`, cut to QUOTE_LIMIT characters; an integer too large for repr (over
    4,300 digits) is described by its size."""
    if isinstance(value, int) and value.bit_length() > 256:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 3] + "..."
