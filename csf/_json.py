"""Reading JSON documents that cross a boundary (znodes, rule pushes, snapshots, files).

Python's json module accepts what JSON does not (NaN, Infinity) and what no field of
CSF can use (integers of hundreds of digits, floats that overflow to infinity), and
raises RecursionError on deep nesting. Documents from outside are read strictly, so
every failure is one ValueError saying what is wrong.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_INTEGER_DIGITS = 20
"""Longer integers are refused: every integer field of CSF fits in 64 bits."""


class _Refused(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _Refused(f"an integer of {len(text)} digits is too large")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"{text[:20]} is too large")
    return value


def load_json(data: bytes, limit: int) -> Any:
    """A JSON value from at most `limit` bytes; ValueError saying what is wrong."""
    if len(data) > limit:
        raise ValueError(f"{len(data)} bytes is over {limit}")
    try:
        return json.loads(
            data, parse_constant=_refuse_constant, parse_int=_integer, parse_float=_float
        )
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not JSON ({exc})") from None


def load_json_object(data: bytes, limit: int) -> dict[str, Any]:
    """A JSON object from at most `limit` bytes; ValueError saying what is wrong."""
    document = load_json(data, limit)
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object")
    return document


def has_schema(document: dict[str, Any], expected: int) -> bool:
    """Whether the document's `schema` is the number `expected` (JSON true is not 1)."""
    schema = document.get("schema")
    return type(schema) is int and schema == expected
