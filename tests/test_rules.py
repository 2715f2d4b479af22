import json

import pytest

from csf import bounds, rules
from csf.rules import (
    AppRate,
    BreakerRule,
    RateLimitRule,
    RetryRule,
    RouteRule,
    RuleError,
    WeightRule,
    parse_rule,
)


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
        (
            "weight",
            _doc(instances={"127.0.0.1:1": -5}),
            "expected a whole number from 0 to 100,000",
        ),
        (
            "weight",
            _doc(instances={"127.0.0.1:1": 1.5}),
            "expected a whole number from 0 to 100,000",
        ),
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
        (
            "breaker",
            {"min_calls": 0},
            "breaker.min_calls: expected a whole number from 1 to 1,000,000",
        ),
        ("breaker", {"methods": {"M": {"open_s": -1}}}, "breaker.methods['M'].open_s"),
        ("ratelimit", {"rate": -5}, "ratelimit.rate: expected a number from 0.001 to 1,000,000"),
        ("ratelimit", {"rate": 10, "side": "both"}, "ratelimit.side"),
        (
            "ratelimit",
            {"rate": 10, "burst": 0.5},
            "ratelimit.burst: expected a number from 1 to 1,000,000",
        ),
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


KINDS = "breaker, concurrency, degrade, ratelimit, retry, route, set, timeout, weight"


BREAKER_FIELDS = (
    "error_ratio, force, half_open_probes, methods, min_calls, open_s, schema, slow_call_ms, "
    "slow_ratio, window_s"
)


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("weight", _doc(schema=2), "weight: schema must be 1, got 2"),
        ("weight", _doc(x=1), "weight: unknown field 'x'; allowed: instances, schema"),
        (
            "weight",
            _doc(instances={"h:1": -5}),
            "weight.instances['h:1']: expected a whole number from 0 to 100,000, got -5",
        ),
        ("weight", _doc(instances={"h": 1}), "weight.instances: 'h' is not host:port"),
        ("route", b"[1]", "route: expected a JSON object"),
        (
            "route",
            _doc(x=1),
            "route: unknown field 'x'; allowed: group_weights, methods, schema, tags",
        ),
        ("route", _doc(methods=[]), "route.methods: expected an object of method name to rule"),
        (
            "route",
            _doc(group_weights=[1]),
            "route.group_weights: expected an object of name to weight",
        ),
        ("route", _doc(methods={"M": 1}), "route.methods['M']: expected an object"),
        (
            "route",
            _doc(methods={"M": {"retries": 2}}),
            "route.methods['M']: unknown field 'retries'; allowed: group_weights, tags",
        ),
        (
            "route",
            _doc(methods={"M": {"group_weights": {"a": 0}}}),
            "route.methods['M'].group_weights: at least one weight must be above 0",
        ),
        ("breaker", b"[1]", "breaker: expected a JSON object"),
        ("breaker", _doc(x=1), f"breaker: unknown field 'x'; allowed: {BREAKER_FIELDS}"),
        (
            "breaker",
            _doc(methods=[]),
            "breaker.methods: expected an object of method name to fields",
        ),
        ("breaker", _doc(methods={"M": 1}), "breaker.methods['M']: expected an object"),
        (
            "degrade",
            _doc(methods={"M": {"rate": 1}}),
            "degrade.methods['M']: unknown field 'rate'; allowed: all",
        ),
        (
            "breaker",
            _doc(min_calls=0),
            "breaker.min_calls: expected a whole number from 1 to 1,000,000, got 0",
        ),
        (
            "breaker",
            _doc(force="ajar"),
            "breaker.force: expected one of None, 'open', 'closed', got 'ajar'",
        ),
        (
            "ratelimit",
            _doc(rate=1, methods={"M": {"burst": 0.5}}),
            "ratelimit.methods['M'].burst: expected a number from 1 to 1,000,000, got 0.5",
        ),
        ("colour", _doc(), f"rule kind 'colour' is not known; known: {KINDS}"),
    ],
)
def test_refusals_say_exactly_what_is_wrong(kind: str, data: bytes, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(kind, data)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("breaker", {"error_ratio": True}),
        ("breaker", {"error_ratio": "0.5"}),
        ("breaker", {"min_calls": True}),
        ("breaker", {"min_calls": 1.5}),
        ("breaker", {"half_open_probes": 0}),
        ("ratelimit", {"rate": True}),
        ("ratelimit", {"rate": 0}),
        ("ratelimit", {"max_wait_ms": -1}),
        ("ratelimit", {"max_wait_ms": True}),
        ("concurrency", {"provider": 0}),
        ("retry", {"retries": -1}),
        ("retry", {"cluster": None}),
    ],
)
def test_wrong_types_and_values_are_refused(kind: str, body: dict[str, object]) -> None:
    with pytest.raises(RuleError, match=f"^{kind}\\.{next(iter(body))}: expected"):
        parse_rule(kind, _doc(**body))


def test_the_edges_of_each_range_are_accepted() -> None:
    rule = parse_rule(
        "breaker", _doc(error_ratio=0, slow_ratio=1, min_calls=1, half_open_probes=1, force="open")
    )
    assert rule == BreakerRule(
        error_ratio=0.0, slow_ratio=1.0, min_calls=1, half_open_probes=1, force="open"
    )
    assert parse_rule("ratelimit", _doc(rate=10, burst=1, max_wait_ms=0)) == RateLimitRule(
        rate=10.0, burst=1.0
    )
    assert parse_rule("ratelimit", _doc(rate=10)) == RateLimitRule(rate=10.0)
    assert parse_rule("retry", _doc(retries=0, cluster="forking")) == RetryRule(
        retries=0, cluster="forking"
    )
    assert parse_rule("weight", _doc()) == WeightRule()


def test_a_methods_rule_is_the_service_rule_with_its_fields_and_no_methods() -> None:
    rule = parse_rule("breaker", _doc(error_ratio=0.3, methods={"Pay": {"force": "open"}}))
    assert rule.for_method("Pay") == BreakerRule(error_ratio=0.3, force="open")


def test_route_methods_may_require_tags() -> None:
    rule = parse_rule("route", _doc(methods={"M": {"tags": {"set": "s1"}}}))
    assert isinstance(rule, RouteRule)
    assert rule.for_method("M") == RouteRule(tags={"set": "s1"})


def test_the_field_checks_that_build_the_rule_kinds_refuse_bad_values() -> None:
    # The kinds build their checks when csf.rules is imported; these are the same checks,
    # built here.
    whole = rules._whole(bounds.CALLS)
    assert whole("k.f", 1) == 1
    for bad in (0, 1.5, True, "2", 1_000_001):
        with pytest.raises(RuleError) as caught:
            whole("k.f", bad)
        assert str(caught.value) == f"k.f: expected a whole number from 1 to 1,000,000, got {bad!r}"
    one_of = rules._one_of(None, "a")
    assert one_of("k.f", "a") == "a" and one_of("k.f", None) is None
    with pytest.raises(RuleError) as caught:
        one_of("k.f", "b")
    assert str(caught.value) == "k.f: expected one of None, 'a', got 'b'"


@pytest.mark.parametrize(
    ("kind", "document", "where"),
    [
        ("route", _doc(group_weights={f"g{i}": 1 for i in range(1_001)}), "route.group_weights"),
        ("route", _doc(tags={f"t{i}": "v" for i in range(1_001)}), "route.tags"),
        ("weight", _doc(instances={f"h:{i + 1}": 1 for i in range(1_001)}), "weight.instances"),
        ("timeout", _doc(methods={f"M{i}": {} for i in range(1_001)}), "timeout.methods"),
        (
            "ratelimit",
            _doc(apps={f"app{i}": {"rate": 1} for i in range(1_001)}),
            "ratelimit.apps",
        ),
    ],
)
def test_a_rule_map_of_more_than_a_thousand_entries_is_refused(
    kind: str, document: bytes, where: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(kind, document)
    assert str(caught.value) == f"{where}: 1001 entries, at most 1000"


def test_ratelimit_apps_give_each_app_its_rate_and_burst() -> None:
    rule = parse_rule(
        "ratelimit",
        _doc(apps={"web": {"rate": 100, "burst": 20}, "job": {"rate": 10}, "slow": {"rate": 5}}),
    )
    assert isinstance(rule, RateLimitRule)
    assert rule.app_limit("web") == AppRate(rate=100.0, burst=20.0)
    # burst defaults as the consumer's and provider's limits do: 1/20 s worth, at least 1.
    assert rule.app_limit("job", "SayHello") == AppRate(rate=10.0, burst=1.0)
    assert rules.default_burst(1000.0) == 50.0
    assert rule.app_limit("stranger") is None
    # Consumers and providers ignore apps: no rate of their own.
    assert (rule.rate, rule.burst, rule.side) == (None, None, "consumer")
    assert rule.app_scope("SayHello") is False and rule.app_scope(None) is False


def test_a_methods_apps_replace_the_services_apps_for_that_method() -> None:
    rule = parse_rule(
        "ratelimit",
        _doc(
            apps={"web": {"rate": 10}, "job": {"rate": 1}},
            methods={"Pay": {"apps": {"web": {"rate": 2, "burst": 2}}}, "Ping": {"rate": 5}},
        ),
    )
    assert isinstance(rule, RateLimitRule)
    assert rule.app_limit("web", "Pay") == AppRate(2.0, 2.0)
    assert rule.app_limit("job", "Pay") is None
    assert rule.app_limit("job", "Ping") == rule.app_limit("job") == AppRate(1.0, 1.0)
    assert rule.app_limit("web", None) == AppRate(10.0, 1.0)
    assert (rule.app_scope("Pay"), rule.app_scope("Ping"), rule.app_scope("Other")) == (
        True,
        False,
        False,
    )
    assert rule.for_method("Pay").apps == {"web": AppRate(2.0, 2.0)}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"apps": []}, "ratelimit.apps: expected an object of app name to {rate, burst}"),
        ({"apps": {"web": 5}}, "ratelimit.apps['web']: expected an object with rate and burst"),
        ({"apps": {"web": {}}}, "ratelimit.apps['web'].rate: required"),
        (
            {"apps": {"web": {"rate": 0}}},
            "ratelimit.apps['web'].rate: expected a number from 0.001 to 1,000,000, got 0",
        ),
        (
            {"apps": {"web": {"rate": 1_000_001}}},
            "ratelimit.apps['web'].rate: expected a number from 0.001 to 1,000,000, got 1000001",
        ),
        (
            {"apps": {"web": {"rate": 1, "burst": 0.5}}},
            "ratelimit.apps['web'].burst: expected a number from 1 to 1,000,000, got 0.5",
        ),
        (
            {"apps": {"web": {"rate": 1, "burst": None}}},
            "ratelimit.apps['web'].burst: expected a number from 1 to 1,000,000, got None",
        ),
        (
            {"apps": {"web": {"rate": 1, "max_wait_ms": 5}}},
            "ratelimit.apps['web']: unknown field 'max_wait_ms'; allowed: burst, rate",
        ),
        (
            {"apps": {"bad/app": {"rate": 1}}},
            "ratelimit.apps: 'bad/app' is not a valid name "
            "(letters, digits, '.', '_', '-'; at most 128; not starting with a symbol)",
        ),
        (
            {"methods": {"Pay": {"apps": {"web": {"rate": True}}}}},
            "ratelimit.methods['Pay'].apps['web'].rate: expected a number from 0.001 to "
            "1,000,000, got True",
        ),
    ],
)
def test_bad_ratelimit_apps_are_refused_with_the_field_named(
    body: dict[str, object], message: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("ratelimit", _doc(**body))
    assert str(caught.value) == message
