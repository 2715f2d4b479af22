import json

import pytest

from csf.rules import BreakerRule, RetryRule, RouteRule, RuleError, WeightRule, parse_rule


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


@pytest.mark.parametrize(
    ("kind", "body", "reason"),
    [
        ("breaker", {"error_ratio": 1.5}, "breaker.error_ratio: expected a number from 0 to 1"),
        ("breaker", {"force": "ajar"}, "breaker.force: expected one of"),
        ("breaker", {"min_calls": 0}, "breaker.min_calls: expected a whole number >= 1"),
        ("breaker", {"methods": {"M": {"open_s": -1}}}, "breaker.methods['M'].open_s"),
        ("ratelimit", {"rate": -5}, "ratelimit.rate: expected a number above 0"),
        ("ratelimit", {"rate": 10, "side": "both"}, "ratelimit.side"),
        ("ratelimit", {"rate": 10, "burst": 0.5}, "ratelimit.burst: expected at least 1"),
        ("concurrency", {"consumer": 0}, "concurrency.consumer"),
        ("retry", {"cluster": "broadcast"}, "retry.cluster"),
        ("retry", {"budget_ratio": 2}, "retry.budget_ratio"),
        ("timeout", {"timeout_ms": 0}, "timeout.timeout_ms"),
        ("degrade", {"all": "yes"}, "degrade.all: expected true or false"),
        ("degrade", {"methods": {"M": {"rate": 1}}}, "unknown field 'rate'"),
    ],
)
def test_flat_rule_kinds_refuse_bad_fields(kind: str, body: dict[str, object], reason: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(kind, _doc(**body))
    assert reason in str(caught.value)


def test_flat_rules_apply_method_overrides() -> None:
    rule = parse_rule("breaker", _doc(error_ratio=0.3, methods={"Pay": {"force": "open"}}))
    assert isinstance(rule, BreakerRule)
    assert (rule.error_ratio, rule.force) == (0.3, None)
    assert (rule.for_method("Pay").error_ratio, rule.for_method("Pay").force) == (0.3, "open")
    assert rule.for_method("Other") is rule
    assert parse_rule("retry", _doc()) == RetryRule()
