"""Governance rule documents (DESIGN section 2, `configs/<kind>`): parsed and validated.

Consumers and the csf-registry CLI use the same parsers, so a rule the CLI accepts is a
rule consumers apply. Every document is a JSON object with `"schema": 1`; unknown keys
and wrong types are refused with a `RuleError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Self

from csf import bounds
from csf._exceptions import ConfigError
from csf._rule_document import RuleError as RuleError
from csf._rule_document import entries, only_keys, rule_document
from csf.bounds import Bound
from csf.config import check_name, parse_address
from csf.set_rule import SetRule


def _weights(where: str, value: object, key_check: Callable[[str, str], object]) -> dict[str, int]:
    weights = {}
    for key, weight in entries(where, value, "name to weight").items():
        try:
            key_check(where, key)
        except ConfigError as exc:
            raise RuleError(str(exc)) from None
        weights[key] = bounds.WEIGHT.check_whole(f"{where}[{key!r}]", weight, RuleError)
    return weights


@dataclass(frozen=True)
class WeightRule:
    """`weight`: override providers' weights, `{"instances": {"host:port": weight}}`."""

    KIND: ClassVar[str] = "weight"
    instances: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes) -> WeightRule:
        document = rule_document("weight", data)
        only_keys("weight", document, {"schema", "instances"})
        return cls(_weights("weight.instances", document.get("instances", {}), parse_address))


@dataclass(frozen=True)
class RouteRule:
    """`route`: share calls among groups and require provider tags, per service or method.

    `{"group_weights": {"normal": 90, "gray": 10}, "tags": {"set": "s1"},
      "methods": {"SayHello": {...the same keys...}}}`
    """

    KIND: ClassVar[str] = "route"
    group_weights: Mapping[str, int] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    methods: Mapping[str, RouteRule] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes) -> RouteRule:
        document = rule_document("route", data)
        only_keys("route", document, {"schema", "group_weights", "tags", "methods"})
        methods = entries("route.methods", document.get("methods", {}), "method name to rule")
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
        tags = entries(f"{where}.tags", body.get("tags", {}), "string to string")
        if not all(isinstance(v, str) for v in tags.values()):
            raise RuleError(f"{where}.tags: expected an object of string to string")
        parsed_methods = {}
        for name, method_body in methods.items():
            method_where = f"{where}.methods[{name!r}]"
            if not isinstance(method_body, dict):
                raise RuleError(f"{method_where}: expected an object")
            only_keys(method_where, method_body, {"group_weights", "tags"})
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


# -- the flat kinds: a few checked fields, each overridable per method -----------------

Check = Callable[[str, Any], Any]


def _number(bound: Bound) -> Check:
    def check(where: str, value: Any) -> float:
        return bound.check(where, value, RuleError)

    return check


def _whole(bound: Bound) -> Check:
    def check(where: str, value: Any) -> int:
        return bound.check_whole(where, value, RuleError)

    return check


def _one_of(*options: object) -> Check:
    def check(where: str, value: Any) -> Any:
        if value not in options:
            raise RuleError(
                f"{where}: expected one of {', '.join(map(repr, options))}, got {value!r}"
            )
        return value

    return check


def _flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise RuleError(f"{where}: expected true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class FlatRule:
    """A kind whose document is a few checked fields, with `methods` overriding them."""

    KIND: ClassVar[str]
    CHECKS: ClassVar[Mapping[str, Check]]
    methods: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes) -> Self:
        document = rule_document(cls.KIND, data)
        only_keys(cls.KIND, document, {"schema", "methods", *cls.CHECKS})
        methods = entries(
            f"{cls.KIND}.methods", document.get("methods", {}), "method name to fields"
        )
        parsed_methods = {}
        for name, body in methods.items():
            where = f"{cls.KIND}.methods[{name!r}]"
            if not isinstance(body, dict):
                raise RuleError(f"{where}: expected an object")
            only_keys(where, body, set(cls.CHECKS))
            parsed_methods[name] = cls._checked(where, body)
        service = cls._checked(cls.KIND, document)
        return cls(methods=parsed_methods, **service)

    @classmethod
    def _checked(cls, where: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return {
            key: cls.CHECKS[key](f"{where}.{key}", value)
            for key, value in body.items()
            if key in cls.CHECKS
        }

    def for_method(self, name: str) -> Self:
        """The rule as it applies to method `name`."""
        override = self.methods.get(name)
        return replace(self, methods={}, **override) if override else self


@dataclass(frozen=True)
class BreakerRule(FlatRule):
    KIND = "breaker"
    CHECKS: ClassVar[Mapping[str, Check]] = {
        "force": _one_of(None, "open", "closed"),
        "error_ratio": _number(bounds.RATIO),
        "slow_ratio": _number(bounds.RATIO),
        "slow_call_ms": _number(bounds.SLOW_CALL_MS),
        "min_calls": _whole(bounds.CALLS),
        "window_s": _number(bounds.WINDOW_S),
        "open_s": _number(bounds.WINDOW_S),
        "half_open_probes": _whole(bounds.PROBES),
    }
    force: str | None = None
    error_ratio: float = 0.5
    slow_ratio: float = 1.0
    slow_call_ms: float = 1000.0
    min_calls: int = 20
    window_s: float = 10.0
    open_s: float = 5.0
    half_open_probes: int = 3


@dataclass(frozen=True)
class DegradeRule(FlatRule):
    """`degrade`: answer every call (or one method's) with its fallback."""

    KIND = "degrade"
    CHECKS: ClassVar[Mapping[str, Check]] = {"all": _flag}
    all: bool = False


def default_burst(rate: float) -> float:
    """The burst of a limit that names none: a twentieth of a second's worth, at least 1,
    which keeps the admitted rate at `rate` when calls arrive in a steady stream."""
    return max(1.0, rate / 20)


@dataclass(frozen=True, slots=True)
class AppRate:
    """One app's limit at the gateway: `rate` calls per second, `burst` tokens."""

    rate: float
    burst: float


def _app_rates(where: str, value: Any) -> Mapping[str, AppRate]:
    rates = {}
    for app, body in entries(where, value, "app name to {rate, burst}").items():
        try:
            check_name(where, app)
        except ConfigError as exc:
            raise RuleError(str(exc)) from None
        app_where = f"{where}[{app!r}]"
        if not isinstance(body, dict):
            raise RuleError(f"{app_where}: expected an object with rate and burst")
        only_keys(app_where, body, {"rate", "burst"})
        if "rate" not in body:
            raise RuleError(f"{app_where}.rate: required")
        rate = bounds.RATE.check(f"{app_where}.rate", body["rate"], RuleError)
        burst = body.get("burst", default_burst(rate))
        rates[app] = AppRate(rate, bounds.BURST.check(f"{app_where}.burst", burst, RuleError))
    return rates


@dataclass(frozen=True)
class RateLimitRule(FlatRule):
    """`ratelimit`: a token bucket per process, on the consumer or the provider side.

    A call finding no token waits up to `max_wait_ms` (within its deadline), else fails.
    `apps` (`{"<app>": {"rate", "burst"}}`, burst defaulting as `default_burst`) limits
    each app's calls through a gateway, per gateway process, whatever `side` says;
    consumers and providers ignore it. Like every key, a method's `apps` replaces the
    service's whole for that method: an app it leaves out has no limit there.
    """

    KIND = "ratelimit"
    CHECKS: ClassVar[Mapping[str, Check]] = {
        "side": _one_of("consumer", "provider"),
        "rate": _number(bounds.RATE),
        "burst": _number(bounds.BURST),
        "max_wait_ms": _number(bounds.MAX_WAIT_MS),
        "apps": _app_rates,
    }
    side: str = "consumer"
    rate: float | None = None
    burst: float | None = None
    max_wait_ms: float = 0.0
    apps: Mapping[str, AppRate] = field(default_factory=dict)

    def app_scope(self, method: str | None) -> bool:
        """Whether `method` has an `apps` map of its own: its calls then count in buckets
        of their own, apart from the one per app the service's map gives."""
        return method is not None and "apps" in self.methods.get(method, {})

    def app_limit(self, app: str, method: str | None = None) -> AppRate | None:
        """The limit on `app`'s calls to `method` (any method when None): from the
        method's own `apps` map if it has one, else the service's; None: no limit."""
        own = self.methods.get(method, {}) if method is not None else {}
        apps: Mapping[str, AppRate] = own.get("apps", self.apps)
        return apps.get(app)


@dataclass(frozen=True)
class ConcurrencyRule(FlatRule):
    """`concurrency`: calls in flight per consumer process, handlers at once per provider.

    A call over the limit waits up to `max_wait_ms` (within its deadline), else fails.
    """

    KIND = "concurrency"
    CHECKS: ClassVar[Mapping[str, Check]] = {
        "consumer": _whole(bounds.CALLS),
        "provider": _whole(bounds.CALLS),
        "max_wait_ms": _number(bounds.MAX_WAIT_MS),
    }
    consumer: int | None = None
    provider: int | None = None
    max_wait_ms: float = 0.0


@dataclass(frozen=True)
class RetryRule(FlatRule):
    KIND = "retry"
    CHECKS: ClassVar[Mapping[str, Check]] = {
        "cluster": _one_of("failover", "failfast", "failsafe", "forking"),
        "retries": _whole(bounds.RETRIES),
        "budget_ratio": _number(bounds.RATIO),
        "budget_min_per_s": _whole(bounds.PER_SECOND),
    }
    cluster: str = "failover"
    retries: int | None = None
    budget_ratio: float = 0.2
    budget_min_per_s: int = 10


@dataclass(frozen=True)
class TimeoutRule(FlatRule):
    KIND = "timeout"
    CHECKS: ClassVar[Mapping[str, Check]] = {"timeout_ms": _number(bounds.TIMEOUT_MS)}
    timeout_ms: float | None = None


Rule = WeightRule | RouteRule | FlatRule | SetRule
FLAT_RULES: tuple[type[FlatRule], ...] = (
    BreakerRule,
    DegradeRule,
    RateLimitRule,
    ConcurrencyRule,
    RetryRule,
    TimeoutRule,
)
"""The kinds whose keys are checked one by one (`CHECKS`), service-wide and per method."""
PARSERS: Mapping[str, Callable[[bytes], Rule]] = {
    "weight": WeightRule.parse,
    "route": RouteRule.parse,
    "set": SetRule.parse,
    **{kind.KIND: kind.parse for kind in FLAT_RULES},
}


def parse_rule(kind: str, data: bytes) -> Rule:
    """Parse and validate one rule document; raises RuleError saying what is wrong."""
    parser = PARSERS.get(kind)
    if parser is None:
        raise RuleError(f"rule kind {kind!r} is not known; known: {', '.join(sorted(PARSERS))}")
    return parser(data)
