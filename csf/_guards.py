"""The provider guard chain: a named order of guard factories, built once per method.

`DEFAULT_PROVIDER_CHAIN` lists guard names outermost first. A server can pass its own
order (`chain=`) and its own factories by name (`guards=`), replacing a built-in one or
adding a new one; each factory is called once per served method, when the server
starts, with that method's `GuardContext`, and returns the Guard to run around its
handler, or None to leave that method without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from csf._handlers import Guard
from csf._named import resolve_named
from csf.auth import AuthGuard, CallerAuth, Subscribers
from csf.observability import Telemetry
from csf.observability.metrics import ServerMetricsGuard
from csf.observability.tracing import ServerTracingGuard
from csf.provider import ProviderSpec
from csf.resilience.concurrency import ExecutesGuard
from csf.resilience.ratelimit import RateLimitGuard
from csf.rule_set import ServiceRules
from csf.set_guard import SetGuard
from csf.set_rule import SetName


@dataclass(frozen=True, slots=True)
class GuardContext:
    """What a guard factory knows about the one served method it builds a guard for."""

    tenant: str
    service: str
    method: str
    """The gRPC method path, '/package.Service/Method'."""
    spec: ProviderSpec
    """What `@csf.provider` declared on the servicer class."""
    rules: ServiceRules
    """The service's provider-side rules (concurrency, ratelimit), watched while serving."""
    telemetry: Telemetry
    auth: CallerAuth | None
    subscribers: Callable[[], Subscribers]
    """The apps subscribed to the service: one shared view, watched from the first call."""
    set_name: str | None = None
    """The server's SET (`Server(set=)`), if it has one."""

    @property
    def method_name(self) -> str:
        return self.method.rsplit("/", 1)[-1]


GuardFactory = Callable[[GuardContext], Guard | None]


def _tracing(ctx: GuardContext) -> Guard | None:
    tracer = ctx.telemetry.tracer
    if tracer is None:
        return None
    return ServerTracingGuard(tracer, ctx.method, ctx.service, ctx.set_name)


def _auth(ctx: GuardContext) -> Guard | None:
    if ctx.auth is None:
        return None
    subscribers = ctx.subscribers() if ctx.auth.require_subscription else None
    return AuthGuard(ctx.auth, ctx.tenant, ctx.service, subscribers)


def _metrics(ctx: GuardContext) -> Guard | None:
    instruments = ctx.telemetry.instruments
    if instruments is None:
        return None
    return ServerMetricsGuard(instruments, ctx.method, ctx.service, ctx.set_name)


def _set(ctx: GuardContext) -> Guard | None:
    if ctx.set_name is None:
        return None
    return SetGuard(ctx.method, SetName.parse("set", ctx.set_name), ctx.rules)


def _concurrency(ctx: GuardContext) -> Guard:
    return ExecutesGuard(ctx.method, ctx.spec.executes, ctx.rules)


def _rate_limit(ctx: GuardContext) -> Guard:
    return RateLimitGuard(ctx.method, ctx.rules)


# Tracing sees every call; auth refuses a stranger before metrics count it or a limit
# spends a permit on it; a call misrouted to another SET is counted, then refused. With
# tracing, metrics or auth off, or no SET, their guard is left out.
DEFAULT_PROVIDER_CHAIN: tuple[str, ...] = (
    "tracing",
    "auth",
    "metrics",
    "set",
    "concurrency",
    "rate_limit",
)
BUILTIN_PROVIDER_GUARDS: Mapping[str, GuardFactory] = {
    "tracing": _tracing,
    "auth": _auth,
    "metrics": _metrics,
    "set": _set,
    "concurrency": _concurrency,
    "rate_limit": _rate_limit,
}


def resolve_guards(
    chain: Sequence[str], guards: Mapping[str, GuardFactory] | None
) -> tuple[GuardFactory, ...]:
    """The factories for `chain`, user-given ones first; ConfigError for an unknown or
    repeated name."""
    return resolve_named(chain, BUILTIN_PROVIDER_GUARDS, guards, "guard")


def build_guards(ctx: GuardContext, factories: Sequence[GuardFactory]) -> list[Guard]:
    guards = (factory(ctx) for factory in factories)
    return [guard for guard in guards if guard is not None]
