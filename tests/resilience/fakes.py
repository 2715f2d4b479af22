"""Stand-ins for the filters' unit tests (no network): rule documents the test pushes
through a real ServiceRules, a scripted provider, and a provider call's context."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc

from csf import Invocation
from csf._invocation import Clock, MethodContext, MethodState
from csf.config import MethodSettings
from csf.observability import OFF, Telemetry
from csf.registry._base import RuleListener
from csf.registry.rejections import Rejections
from csf.rule_set import ServiceRules

METHOD = "/p.S/M"


class _Nothing:
    async def cancel(self) -> None:
        return None


class RuleFeed:
    """A registry that delivers the rule documents the test pushes, as ZooKeeper would
    (each with the next version), and keeps the applied nodes reported to it."""

    def __init__(self) -> None:
        self.listeners: dict[str, RuleListener] = {}
        self.rejections = Rejections()
        self.versions: dict[str, int] = {}
        self.applied: dict[tuple[str, str], bytes] = {}
        """(kind, process) -> the applied node's document."""

    def subscribe_rule(
        self, tenant: str, service: str, kind: str, listener: RuleListener
    ) -> _Nothing:
        self.listeners[kind] = listener
        return _Nothing()

    def report_applied(
        self, tenant: str, service: str, kind: str, process: str, document: bytes | None
    ) -> None:
        if document is None:
            self.applied.pop((kind, process), None)
        else:
            self.applied[(kind, process)] = document

    def give(self, kind: str, data: bytes) -> None:
        """Set rule `kind` to `data`, as its next version."""
        version = self.versions[kind] = self.versions.get(kind, -1) + 1
        self.listeners[kind](data, version)

    def push(self, kind: str, **fields: Any) -> None:
        """Set rule `kind` to `fields` (with its schema)."""
        self.give(kind, json.dumps({"schema": 1, **fields}).encode())

    def delete(self, kind: str) -> None:
        self.versions.pop(kind, None)
        self.listeners[kind](None, -1)


def service_rules(**rules: dict[str, Any]) -> tuple[ServiceRules, RuleFeed]:
    """A real ServiceRules fed by a RuleFeed, starting with `rules` (kind -> fields)."""
    feed = RuleFeed()
    service_rules = ServiceRules(feed, "T", "S")  # type: ignore[arg-type]
    for kind, fields in rules.items():
        feed.push(kind, **fields)
    return service_rules, feed


def context(
    rules: ServiceRules | None = None,
    *,
    idempotent: bool = True,
    retries: int = 2,
    fallback: Any = None,
    empty: Any = "empty",
    telemetry: Telemetry = OFF,
    kind: str = "unary_unary",
    clock: Clock | None = None,
    state: MethodState | None = None,
) -> MethodContext:
    """The MethodContext of method M of service S (`kind` says which kind of call), over
    a fresh MethodState unless given one; `empty` None: no empty response."""
    rules = rules or service_rules()[0]
    if state is None:
        state = MethodState("S", METHOD, rules, telemetry, *([clock] if clock else []))
    settings = MethodSettings(
        timeout=1.0, retries=retries, idempotent=idempotent, cluster="c", lb="random",
        group=None, version=None, tags={},
    )  # fmt: skip
    return MethodContext(
        service="S", method=METHOD, kind=kind, config=settings,
        directory=None,  # type: ignore[arg-type]
        rules=rules, state=state, balancer=None,  # type: ignore[arg-type]
        fallback=fallback, hash_key=None, telemetry=telemetry,
        empty_response=None if empty is None else lambda: empty,
    )  # fmt: skip


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    """An error as a provider's call raises it."""
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(), details or code.name, None
    )


def invocation(deadline: float, method: str = METHOD) -> Invocation:
    return Invocation("S", method, "request", None, deadline)


class Provider:
    """The rest of the chain: answers each attempt from a script. A status code or an
    exception is raised, anything else returned; past the script it answers "ok"."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls: list[Invocation] = []

    async def __call__(self, inv: Invocation) -> Any:
        assert isinstance(inv, Invocation), "a filter passes the call's invocation on"
        self.calls.append(inv)
        outcome = self.script.pop(0) if self.script else "ok"
        if isinstance(outcome, grpc.StatusCode):
            raise rpc_error(outcome)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Held:
    """The rest of the chain, holding each call until the test lets it go (a call held
    for 10 s fails: a test that lets no call go must not hang)."""

    def __init__(self) -> None:
        self.entered = 0
        self.release = asyncio.Event()

    async def __call__(self, inv: Invocation) -> str:
        assert isinstance(inv, Invocation), "a filter passes the call's invocation on"
        self.entered += 1
        await asyncio.wait_for(self.release.wait(), 10)
        return "ok"


class Aborted(Exception):
    """What ServicerContext.abort raises: the handler does not run."""


class ServicerContext:
    """A provider call's context: its remaining deadline, and abort."""

    def __init__(self, time_remaining: float | None = None) -> None:
        self._time_remaining = time_remaining
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def time_remaining(self) -> float | None:
        return self._time_remaining

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        self.aborted = (code, details)
        raise Aborted(details)
