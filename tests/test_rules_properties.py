"""Rule documents read from ZooKeeper (`configs/<kind>`), as properties: any bytes and any
JSON give a rule whose numbers lie within the documented bounds, or a RuleError; valid
documents parse into exactly the fields they give."""

import json
import math
import re
import string
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

import csf
from csf.rules import (
    PARSERS,
    AppRate,
    BreakerRule,
    ConcurrencyRule,
    DegradeRule,
    FlatRule,
    RateLimitRule,
    RetryRule,
    RouteRule,
    Rule,
    RuleError,
    TimeoutRule,
    WeightRule,
    parse_rule,
)
from tests.strategies import (
    DEEP,
    EXACT,
    HUGE,
    encoded,
    examples,
    hostile_numbers,
    json_values,
    nested,
    tame_numbers,
)

# The documented keys of each kind besides "schema" and "methods".
FIELDS: dict[str, list[str]] = {
    "breaker": [
        "force", "error_ratio", "slow_ratio", "slow_call_ms", "min_calls", "window_s",
        "open_s", "half_open_probes",
    ],
    "degrade": ["all"],
    "ratelimit": ["side", "rate", "burst", "max_wait_ms", "apps"],
    "concurrency": ["consumer", "provider", "max_wait_ms"],
    "retry": ["cluster", "retries", "budget_ratio", "budget_min_per_s"],
    "timeout": ["timeout_ms"],
    "weight": ["instances"],
    "route": ["group_weights", "tags"],
    "set": ["key", "buckets", "ranges", "on_empty", "verify"],
}  # fmt: skip
KINDS = sorted(PARSERS)
FLAT: dict[str, type[FlatRule]] = {
    kind.KIND: kind
    for kind in (BreakerRule, DegradeRule, RateLimitRule, ConcurrencyRule, RetryRule, TimeoutRule)
}


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def test_the_properties_cover_every_kind_of_rule() -> None:
    assert sorted(FIELDS) == KINDS
    assert issubclass(RuleError, csf.ConfigError)


# -- what "within the documented bounds" means, field by field ------------------------------


def _ratio(value: object) -> bool:
    return isinstance(value, float) and 0 <= value <= 1


def _finite(minimum: float, *, above: bool = False) -> Any:
    def check(value: object) -> bool:
        if not isinstance(value, float) or not math.isfinite(value):
            return False
        return value > minimum if above else value >= minimum

    return check


def _whole(minimum: int) -> Any:
    def check(value: object) -> bool:
        return type(value) is int and minimum <= value <= EXACT

    return check


def _optional(check: Any) -> Any:
    return lambda value: value is None or check(value)


def _app_rates(value: object) -> bool:
    """A map of valid app names to rates above 0 and bursts of at least 1."""
    return isinstance(value, dict) and all(
        NAME.fullmatch(app)
        and isinstance(limit, AppRate)
        and _finite(0, above=True)(limit.rate)
        and _finite(1)(limit.burst)
        for app, limit in value.items()
    )


BOUNDS: dict[str, dict[str, Any]] = {
    "breaker": {
        "force": lambda value: value in (None, "open", "closed"),
        "error_ratio": _ratio,
        "slow_ratio": _ratio,
        "slow_call_ms": _finite(0, above=True),
        "min_calls": _whole(1),
        "window_s": _finite(0, above=True),
        "open_s": _finite(0, above=True),
        "half_open_probes": _whole(1),
    },
    "degrade": {"all": lambda value: isinstance(value, bool)},
    "ratelimit": {
        "side": lambda value: value in ("consumer", "provider"),
        "rate": _optional(_finite(0, above=True)),
        "burst": _optional(_finite(1)),
        "max_wait_ms": _finite(0),
        "apps": _app_rates,
    },
    "concurrency": {
        "consumer": _optional(_whole(1)),
        "provider": _optional(_whole(1)),
        "max_wait_ms": _finite(0),
    },
    "retry": {
        "cluster": lambda value: value in ("failover", "failfast", "failsafe", "forking"),
        "retries": _optional(_whole(0)),
        "budget_ratio": _ratio,
        "budget_min_per_s": _whole(0),
    },
    "timeout": {"timeout_ms": _optional(_finite(0, above=True))},
}


def assert_within_bounds(rule: Rule) -> None:
    """Every number of `rule`, and of each method's override, is finite, at most EXACT
    and within the bounds documented for its field."""
    if isinstance(rule, WeightRule):
        assert all(_whole(0)(weight) for weight in rule.instances.values()), rule
        return
    if isinstance(rule, RouteRule):
        for route in (rule, *(rule.for_method(name) for name in rule.methods)):
            weights = list(route.group_weights.values())
            assert all(_whole(0)(weight) for weight in weights), rule
            assert not weights or any(weights), rule
            assert all(isinstance(value, str) for value in route.tags.values()), rule
        return
    assert isinstance(rule, FlatRule)
    for name in ("", *rule.methods):
        applied = rule.for_method(name)
        for field, check in BOUNDS[rule.KIND].items():
            assert check(getattr(applied, field)), (field, getattr(applied, field), rule)


def assert_rule_or_rule_error(kind: str, data: bytes) -> Rule | None:
    """parse_rule gives a rule of `kind` within bounds, or raises RuleError."""
    try:
        rule = parse_rule(kind, data)
    except RuleError:
        return None
    assert kind == rule.KIND
    assert_within_bounds(rule)
    return rule


# -- any input: a bounded rule or a RuleError ---------------------------------------------


@given(kind=st.sampled_from(KINDS), data=st.binary(max_size=300))
@examples(3000)
@example(kind="breaker", data=b"")
@example(kind="retry", data=b"\xff\xfe{}")
@example(kind="timeout", data=b'{"schema": 1, "timeout_ms": 5')
def test_any_bytes_give_a_bounded_rule_or_a_rule_error(kind: str, data: bytes) -> None:
    assert_rule_or_rule_error(kind, data)


@given(kind=st.text(max_size=12).filter(lambda kind: kind not in PARSERS), data=st.binary())
@examples(50)
def test_an_unknown_kind_is_a_rule_error(kind: str, data: bytes) -> None:
    with pytest.raises(RuleError, match="not known"):
        parse_rule(kind, data)


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}", fullmatch=True)
methods = st.from_regex(r"[A-Z][A-Za-z0-9]{0,15}", fullmatch=True)
host_names = st.from_regex(
    r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,8}[a-z0-9])?){0,2}", fullmatch=True
)
addresses = st.builds(
    "{}:{}".format, st.ip_addresses(v=4).map(str) | host_names, st.integers(1, 65535)
)
# Values some field of some kind accepts, so that many documents get through.
plausible = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(0, 20),
    st.floats(0, 2),
    st.sampled_from(["open", "closed", "consumer", "provider", "failover", "forking"]),
    st.dictionaries(names | addresses, st.integers(0, 5), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    # An apps map: app name to {rate, burst}.
    st.dictionaries(
        names | st.text(max_size=3),
        st.fixed_dictionaries({}, optional={"rate": st.floats(0, 2), "burst": st.integers(0, 3)}),
        max_size=2,
    ),
)


def rule_documents(kind: str, numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """JSON objects shaped like a `kind` rule: some of its own keys and now and then
    another, values that are often plausible and otherwise anything (whose numbers come
    from `numbers`), a schema that is mostly 1, and methods."""
    values = st.one_of(plausible, plausible, json_values(numbers, leaves=4))
    body = st.builds(
        lambda own, other: {**own, **other},
        st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS[kind], values)),
        st.just({}) | st.dictionaries(st.text(max_size=8), values, max_size=1),
    )
    overrides = st.dictionaries(methods | st.text(max_size=8), body | values, max_size=2)
    return st.builds(
        lambda fields, schema, overrides: {
            **fields,
            "schema": schema,
            **({} if overrides is None else {"methods": overrides}),
        },
        body,
        st.sampled_from([1, 1, 1, 1, 1, 1, 2, "1", None, 1.5]),
        st.none() | overrides | values,
    )


def kinds_and_documents(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[str, Any]]:
    """A kind, and a JSON value shaped like its documents."""
    return st.one_of([st.tuples(st.just(kind), rule_documents(kind, numbers)) for kind in KINDS])


@given(kind=st.sampled_from(KINDS), document=json_values())
@examples(100)
@example(kind="breaker", document=[{"schema": 1}])
@example(kind="route", document={"schema": 1, "group_weights": []})
def test_any_json_value_gives_a_bounded_rule_or_a_rule_error(kind: str, document: Any) -> None:
    assert_rule_or_rule_error(kind, encoded(document))


@given(kinds_and_documents(tame_numbers))
@examples(200)
@example(("breaker", {"schema": 1, "error_ratio": 1.5}))
@example(("breaker", {"schema": 1, "colour": "red"}))
@example(("retry", {"schema": 1, "methods": {"SayHello": {"colour": "red"}}}))
@example(("ratelimit", {"schema": 1, "burst": 0.5}))
@example(("route", {"schema": 1, "group_weights": {"normal": 0, "gray": 0}}))
@example(("weight", {"schema": 1, "instances": {"127.0.0.1:1": -1}}))
def test_any_rule_shaped_document_gives_a_rule_within_bounds_or_a_rule_error(
    kind_and_document: tuple[str, Any],
) -> None:
    kind, document = kind_and_document
    rule = assert_rule_or_rule_error(kind, encoded(document))
    event(f"{kind} {'refused' if rule is None else 'accepted'}")
    if rule is None:
        return
    # Accepted: a schema-1 object with none but the documented keys, nor in its methods.
    assert isinstance(document, dict) and document["schema"] == 1
    known = {"schema", "methods", *FIELDS[kind]}
    assert set(document) <= known, f"accepted unknown keys {set(document) - known}"
    for body in document.get("methods", {}).values():
        assert set(body) <= set(FIELDS[kind]), f"accepted unknown method keys in {body}"


# -- valid documents parse into the fields they give ---------------------------------------


def _number(low: float, high: float) -> st.SearchStrategy[float | int]:
    return st.integers(math.ceil(low), math.floor(high)) | st.floats(low, high)


# Plausible values of each field: what an operator sends.
VALID: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "breaker": {
        "force": st.sampled_from([None, "open", "closed"]),
        "error_ratio": _number(0, 1),
        "slow_ratio": _number(0, 1),
        "slow_call_ms": _number(1, 60_000),
        "min_calls": st.integers(1, 1_000),
        "window_s": _number(1, 600),
        "open_s": _number(1, 600),
        "half_open_probes": st.integers(1, 100),
    },
    "degrade": {"all": st.booleans()},
    "ratelimit": {
        "side": st.sampled_from(["consumer", "provider"]),
        "rate": _number(0.1, 100_000),
        "burst": _number(1, 10_000),
        "max_wait_ms": _number(0, 60_000),
        "apps": st.dictionaries(
            names,
            st.fixed_dictionaries(
                {"rate": _number(0.1, 100_000)}, optional={"burst": _number(1, 10_000)}
            ),
            max_size=3,
        ),
    },
    "concurrency": {
        "consumer": st.integers(1, 10_000),
        "provider": st.integers(1, 10_000),
        "max_wait_ms": _number(0, 60_000),
    },
    "retry": {
        "cluster": st.sampled_from(["failover", "failfast", "failsafe", "forking"]),
        "retries": st.integers(0, 10),
        "budget_ratio": _number(0, 1),
        "budget_min_per_s": st.integers(0, 1_000),
    },
    "timeout": {"timeout_ms": _number(1, 600_000)},
}


@st.composite
def flat_documents(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, dict[str, Any]]]:
    kind = draw(st.sampled_from(sorted(VALID)))
    fields = st.fixed_dictionaries({}, optional=VALID[kind])
    return kind, draw(fields), draw(st.dictionaries(methods, fields, max_size=3))


@given(flat_documents())
@examples(150)
def test_a_valid_rule_document_parses_into_the_fields_it_gives(
    document: tuple[str, dict[str, Any], dict[str, dict[str, Any]]],
) -> None:
    kind, service, overrides = document
    rule = parse_rule(kind, encoded({"schema": 1, **service, "methods": overrides}))
    assert isinstance(rule, FLAT[kind])
    defaults = FLAT[kind]()
    for name in ("NotOverridden", *overrides):
        applied = rule.for_method(name)
        for field in VALID[kind]:
            given_value = overrides.get(name, {}).get(field, service.get(field))
            if field == "apps":
                given_value = _app_rates_given(given_value)
                assert isinstance(rule, RateLimitRule)
                for app, limit in (given_value or {}).items():
                    assert rule.app_limit(app, name) == limit, (name, app)
            expected = getattr(defaults, field) if given_value is None else given_value
            assert getattr(applied, field) == expected, (name, field)


def _app_rates_given(apps: dict[str, dict[str, float]] | None) -> dict[str, AppRate] | None:
    """The AppRates an `apps` map gives: each burst as given, else the default one."""
    if apps is None:
        return None
    return {
        app: AppRate(limit["rate"], limit.get("burst", max(1.0, limit["rate"] / 20)))
        for app, limit in apps.items()
    }


group_weights = st.dictionaries(names, st.integers(0, 100), max_size=4).filter(
    lambda weights: not weights or any(weights.values())
)
tags = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)


@given(instances=st.dictionaries(addresses, st.integers(0, 10_000), max_size=5))
@examples(50)
def test_a_valid_weight_rule_parses_into_the_weights_it_gives(instances: dict[str, int]) -> None:
    assert parse_rule("weight", encoded({"schema": 1, "instances": instances})) == WeightRule(
        instances
    )


@given(
    weights=group_weights,
    required=tags,
    overrides=st.dictionaries(
        methods,
        st.fixed_dictionaries({}, optional={"group_weights": group_weights, "tags": tags}),
        max_size=3,
    ),
)
@examples(75)
def test_a_valid_route_rule_parses_into_the_groups_and_tags_it_gives(
    weights: dict[str, int], required: dict[str, str], overrides: dict[str, dict[str, Any]]
) -> None:
    document = {"schema": 1, "group_weights": weights, "tags": required, "methods": overrides}
    rule = parse_rule("route", encoded(document))
    assert isinstance(rule, RouteRule)
    assert (rule.group_weights, rule.tags) == (weights, required)
    for name, override in overrides.items():
        applied = rule.for_method(name)
        assert applied.group_weights == (override.get("group_weights") or weights)
        assert applied.tags == (override.get("tags") or required)


# -- weight rules: any text as an address ---------------------------------------------------


@given(address=st.text(string.printable, max_size=24), weight=st.integers(0, 100))
@examples(100)
@example(address="127.0.0.1:50051", weight=1)
@example(address="[::1]:1", weight=1)
@example(address="h:0", weight=1)
def test_a_weight_rule_with_any_ascii_address_is_a_rule_or_a_rule_error(
    address: str, weight: int
) -> None:
    assert_rule_or_rule_error("weight", encoded({"schema": 1, "instances": {address: weight}}))


# -- hostile numbers, nesting and schemas ---------------------------------------------------


@given(kinds_and_documents(hostile_numbers))
@examples(1000)
@example(("ratelimit", {"schema": 1, "rate": math.inf}))
@example(("timeout", {"schema": 1, "timeout_ms": HUGE}))
def test_any_rule_shaped_document_even_with_hostile_numbers_is_bounded_or_a_rule_error(
    kind_and_document: tuple[str, Any],
) -> None:
    kind, document = kind_and_document
    assert_rule_or_rule_error(kind, encoded(document))


numeric_fields = [
    (kind, field)
    for kind, fields in BOUNDS.items()
    for field in fields
    if field not in ("force", "all", "side", "cluster")
]


def _one_field(kind: str, field: str, value: Any) -> dict[str, Any]:
    if kind == "route":
        return {"schema": 1, "group_weights": {"gray": value}}
    if kind == "weight":
        return {"schema": 1, "instances": {"127.0.0.1:1": value}}
    if field == "apps":
        return {"schema": 1, "apps": {"web": {"rate": value}}}
    return {"schema": 1, field: value}


@given(
    kind_and_field=st.sampled_from(numeric_fields),
    value=st.sampled_from([math.inf, -math.inf, math.nan]),
)
@examples(50)
@example(kind_and_field=("ratelimit", "rate"), value=math.inf)
def test_infinity_and_nan_in_a_rule_are_refused(
    kind_and_field: tuple[str, str], value: float
) -> None:
    kind, field = kind_and_field
    assert_rule_or_rule_error(kind, encoded(_one_field(kind, field, value)))


@given(
    kind_and_field=st.sampled_from([*numeric_fields, ("route", "group_weights")]),
    value=st.integers(10**300, 10**500),
)
@examples(50)
@example(kind_and_field=("timeout", "timeout_ms"), value=HUGE)
@example(kind_and_field=("route", "group_weights"), value=HUGE)
@example(kind_and_field=("breaker", "min_calls"), value=HUGE)
def test_integers_of_hundreds_of_digits_in_a_rule_are_refused(
    kind_and_field: tuple[str, str], value: int
) -> None:
    kind, field = kind_and_field
    with pytest.raises(RuleError):
        parse_rule(kind, encoded(_one_field(kind, field, value)))


time_fields = [
    ("timeout", "timeout_ms"),
    ("breaker", "slow_call_ms"),
    ("breaker", "window_s"),
    ("breaker", "open_s"),
]


@given(
    kind_and_field=st.sampled_from(time_fields),
    value=st.floats(min_value=1e13, allow_infinity=False),
)
@examples(50)
@example(kind_and_field=("timeout", "timeout_ms"), value=1e13)
@example(kind_and_field=("breaker", "window_s"), value=5e-324)
def test_durations_beyond_reason_are_refused(kind_and_field: tuple[str, str], value: float) -> None:
    kind, field = kind_and_field
    with pytest.raises(RuleError):
        parse_rule(kind, encoded(_one_field(kind, field, value)))


@given(kind=st.sampled_from(KINDS), depth=st.integers(1, 100_000))
@examples(20)
@example(kind="breaker", depth=DEEP)
def test_a_deeply_nested_rule_is_a_rule_error(kind: str, depth: int) -> None:
    with pytest.raises(RuleError):
        parse_rule(kind, nested(depth, b'{"schema": 1, "methods": ', b"}"))


@given(
    host=st.sampled_from(["h", "127.0.0.1"]),
    port=st.text(st.characters(whitelist_categories=["Nd", "No"]), min_size=1, max_size=8),
)
@examples(50)
@example(host="h", port="\u00b2")
@example(host="h", port="9" * 5_000)
def test_a_weight_rule_whose_port_is_not_ascii_digits_is_a_rule_or_a_rule_error(
    host: str, port: str
) -> None:
    address = f"{host}:{port}"
    assert_rule_or_rule_error("weight", encoded({"schema": 1, "instances": {address: 1}}))


@pytest.mark.parametrize("kind", KINDS)
def test_a_schema_of_true_is_refused(kind: str) -> None:
    with pytest.raises(RuleError, match="schema"):
        parse_rule(kind, json.dumps({"schema": True}).encode())
