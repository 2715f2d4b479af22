import json

import pytest

from csf.rules import RouteRule, RuleError, WeightRule, parse_rule


def _doc(**body: object) -> bytes:
    return json.dumps({"schema": 1, **body}).encode()


def test_weight_rule() -> None:
    rule = parse_rule("weight", _doc(instances={"127.0.0.1:1": 0, "127.0.0.1:2": 300}))
    assert rule == WeightRule({"127.0.0.1:1": 0, "127.0.0.1:2": 300})


def test_route_rule_with_a_method_override() -> None:
    rule = parse_rule(
        "route",
        _doc(
            group_weights={"normal": 90, "gray": 10},
            tags={"zone": "hz"},
            methods={"SayHello": {"group_weights": {"gray": 1}}},
        ),
    )
    assert isinstance(rule, RouteRule)
    assert rule.for_method("Chat") is rule
    assert rule.for_method("SayHello") == RouteRule({"gray": 1}, {"zone": "hz"})


@pytest.mark.parametrize(
    ("kind", "data", "reason"),
    [
        ("weight", b"{not json", "weight: not JSON"),
        ("weight", b"[1]", "expected a JSON object"),
        ("weight", _doc(instances={"127.0.0.1:1": -5}), "weight must be a whole number >= 0"),
        ("weight", _doc(instances={"127.0.0.1:1": 1.5}), "weight must be a whole number >= 0"),
        ("weight", _doc(instances={"no-port": 1}), "is not host:port"),
        ("weight", _doc(instances=[1]), "expected an object"),
        ("weight", _doc(colour="red"), "unknown field 'colour'"),
        ("weight", json.dumps({"schema": 2}).encode(), "schema must be 1"),
        ("weight", b"{}", "schema must be 1"),
        ("route", _doc(group_weights={"gray": 0}), "at least one weight must be above 0"),
        ("route", _doc(group_weights={"bad/name": 1}), "not a valid name"),
        ("route", _doc(tags={"zone": 1}), "route.tags"),
        ("route", _doc(methods={"SayHello": {"retries": 2}}), "unknown field 'retries'"),
        ("route", _doc(methods=[]), "route.methods"),
        ("colour", _doc(), "rule kind 'colour' is not known"),
    ],
)
def test_invalid_rules_are_refused_with_the_field_named(
    kind: str, data: bytes, reason: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(kind, data)
    assert reason in str(caught.value)
