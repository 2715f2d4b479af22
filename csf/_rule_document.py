"""What every rule document shares: the JSON object, its schema, its known keys.

The parsers of each kind (csf.rules, csf.set_rule) build on these, so every kind refuses
bad input the same way: a `RuleError` naming the kind and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csf import bounds
from csf._exceptions import ConfigError
from csf._json import has_schema, load_json_object

RULE_SCHEMA = 1
MAX_RULE_BYTES = 256 * 1024


class RuleError(ConfigError):
    """A rule document that cannot be applied; the message names the kind and field."""


def rule_document(kind: str, data: bytes) -> dict[str, Any]:
    """The JSON object of a `kind` rule, with the right schema."""
    try:
        document = load_json_object(data, MAX_RULE_BYTES)
    except ValueError as exc:
        raise RuleError(f"{kind}: {exc}") from None
    if not has_schema(document, RULE_SCHEMA):
        raise RuleError(f"{kind}: schema must be {RULE_SCHEMA}, got {document.get('schema')!r}")
    return document


def entries(where: str, value: object, what: str) -> dict[str, Any]:
    """`value` as an object of at most bounds.MAX_ENTRIES entries."""
    if not isinstance(value, dict):
        raise RuleError(f"{where}: expected an object of {what}")
    if len(value) > bounds.MAX_ENTRIES:
        raise RuleError(f"{where}: {len(value)} entries, at most {bounds.MAX_ENTRIES}")
    return value


def only_keys(kind: str, document: Mapping[str, Any], allowed: set[str]) -> None:
    """RuleError naming the first key of `document` not in `allowed`."""
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise RuleError(
            f"{kind}: unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )
