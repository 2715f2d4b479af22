"""Governance rule documents (DESIGN section 2, `configs/<kind>`): parsed and validated.

Consumers and the csf-registry CLI use the same parsers, so a rule the CLI accepts is a
rule consumers apply. Every document is a JSON object with `"schema": 1`; unknown keys
and wrong types are refused with a `RuleError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from csf._exceptions import ConfigError
from csf._json import load_json_object
from csf.config import check_name, parse_address

RULE_SCHEMA = 1
MAX_RULE_BYTES = 256 * 1024


class RuleError(ConfigError):
    """A rule document that cannot be applied; the message names the kind and field."""


def _document(kind: str, data: bytes) -> dict[str, Any]:
    try:
        document = load_json_object(data, MAX_RULE_BYTES)
    except ValueError as exc:
        raise RuleError(f"{kind}: {exc}") from None
    if document.get("schema") != RULE_SCHEMA:
        raise RuleError(f"{kind}: schema must be {RULE_SCHEMA}, got {document.get('schema')!r}")
    return document


def _only(kind: str, document: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise RuleError(
            f"{kind}: unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )


def _weights(where: str, value: object, key_check: Callable[[str, str], object]) -> dict[str, int]:
    if not isinstance(value, dict):
        raise RuleError(f"{where}: expected an object of name to weight")
    for key, weight in value.items():
        try:
            key_check(where, key)
        except ConfigError as exc:
            raise RuleError(str(exc)) from None
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise RuleError(f"{where}[{key!r}]: weight must be a whole number >= 0, got {weight!r}")
    return dict(value)


@dataclass(frozen=True)
class WeightRule:
    """`weight`: override providers' weights, `{"instances": {"host:port": weight}}`."""

    instances: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes) -> WeightRule:
        document = _document("weight", data)
        _only("weight", document, {"schema", "instances"})
        return cls(_weights("weight.instances", document.get("instances", {}), parse_address))


@dataclass(frozen=True)
class RouteRule:
    """`route`: share calls among groups and require provider tags, per service or method.

    `{"group_weights": {"normal": 90, "gray": 10}, "tags": {"set": "s1"},
      "methods": {"SayHello": {...the same keys...}}}`
    """

    group_weights: Mapping[str, int] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    methods: Mapping[str, RouteRule] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes) -> RouteRule:
        document = _document("route", data)
        _only("route", document, {"schema", "group_weights", "tags", "methods"})
        methods = document.get("methods", {})
        if not isinstance(methods, dict):
            raise RuleError("route.methods: expected an object of method name to rule")
        return cls._parse_body("route", document, methods)

    @classmethod
    def _parse_body(
        cls, where: str, body: Mapping[str, Any], methods: Mapping[str, Any]
    ) -> RouteRule:
        group_weights = _weights(
            f"{where}.group_weights", body.get("group_weights", {}), check_name
        )
        if group_weights and not any(group_weights.values()):
            raise RuleError(f"{where}.group_weights: at least one weight must be above 0")
        tags = body.get("tags", {})
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise RuleError(f"{where}.tags: expected an object of string to string")
        parsed_methods = {}
        for name, method_body in methods.items():
            method_where = f"{where}.methods[{name!r}]"
            if not isinstance(method_body, dict):
                raise RuleError(f"{method_where}: expected an object")
            _only(method_where, method_body, {"group_weights", "tags"})
            parsed_methods[name] = cls._parse_body(method_where, method_body, {})
        return cls(group_weights, dict(tags), parsed_methods)

    def for_method(self, name: str) -> RouteRule:
        """The rule for method `name`: its own keys, else the service's."""
        override = self.methods.get(name)
        if override is None:
            return self
        return RouteRule(
            group_weights=override.group_weights or self.group_weights,
            tags=override.tags or self.tags,
        )


Rule = WeightRule | RouteRule
PARSERS: Mapping[str, Callable[[bytes], Rule]] = {
    "weight": WeightRule.parse,
    "route": RouteRule.parse,
}


def parse_rule(kind: str, data: bytes) -> Rule:
    """Parse and validate one rule document; raises RuleError saying what is wrong."""
    parser = PARSERS.get(kind)
    if parser is None:
        raise RuleError(f"rule kind {kind!r} is not known; known: {', '.join(sorted(PARSERS))}")
    return parser(data)
