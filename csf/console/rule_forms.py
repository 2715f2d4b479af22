"""A rule kind's form: its fields, and the document a filled-in form makes.

The fields are the keys the kind's own parser checks (`FlatRule.CHECKS`), so a key added
to a rule appears in its form. A form edits the service-level keys only: everything else
the current document holds (`methods`, keys of a newer schema) is carried over untouched,
so saving a form never drops what it does not show. Each value is JSON when it reads as
JSON (numbers, true, objects) and text otherwise; an empty field leaves the key out (the
default). The result goes through the same parser consumers use before anything is
written (csf.registry.admin.RegistryAdmin.set_rule).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from csf._json import load_json
from csf.rules import FLAT_RULES

FIELDS: Mapping[str, tuple[str, ...]] = {
    **{kind.KIND: tuple(kind.CHECKS) for kind in FLAT_RULES},
    "weight": ("instances",),
    "route": ("group_weights", "tags"),
}
"""The form of each kind; a kind not here (`set`) is edited as JSON only."""

SCHEMA = 1
MAX_FIELD_BYTES = 64 * 1024


def shown(document: Any, name: str) -> str:
    """A key's value as its form field shows it ("" when absent)."""
    if not isinstance(document, dict) or name not in document:
        return ""
    value = document[name]
    return value if isinstance(value, str) else json.dumps(value)


def _value(text: str) -> Any:
    try:
        return load_json(text.encode("utf-8", "surrogatepass"), MAX_FIELD_BYTES)
    except ValueError:
        return text


def from_form(kind: str, values: Mapping[str, str], current: Any) -> dict[str, Any]:
    """The document the filled-in form of `kind` makes over `current` (the document in
    force, or None)."""
    document = dict(current) if isinstance(current, dict) else {}
    document["schema"] = document.get("schema", SCHEMA)
    for name in FIELDS[kind]:
        text = values.get(name, "").strip()
        if text:
            document[name] = _value(text)
        else:
            document.pop(name, None)
    return document
