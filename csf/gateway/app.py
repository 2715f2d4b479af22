"""The gateway as an ASGI application: HTTP/JSON in, governed CSF calls out.

Each request passes its checks in this order: body size (413), caller (401), route
(404, 405), subscription (403), the app's rate limit (429), call kind (501), body (400),
then the call. Every answer, errors included, is JSON. The registry session is the
process's one ZooKeeper session: descriptors and subscriptions are watched through it,
and the dispatching `csf.Consumer` shares it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, request_response

from csf.auth import ORIGIN_APP_KEY
from csf.consumer import Consumer
from csf.gateway import headers, transcode
from csf.gateway.access import Signatures
from csf.gateway.catalogue import Catalogue, CatalogueBuilder, Found, NodeKey
from csf.gateway.dispatch import Dispatcher
from csf.gateway.errors import HttpError, compact, encode, from_rpc, refused_by_csf
from csf.gateway.framing import Framing, framing_for
from csf.gateway.limits import AppLimits
from csf.gateway.settings import GatewaySettings
from csf.gateway.subscribers import Subscribers
from csf.gateway.telemetry import Record, RequestTelemetry
from csf.observability import Observability
from csf.observability.providers import meter_provider, tracer_provider
from csf.registry import Registry, Subscription, open_registry
from csf.rule_set import ServiceRules
from csf.rules import TimeoutRule
from csf.set_rule import SET_KEY_METADATA

logger = logging.getLogger("csf.gateway")

HEALTHZ = "/healthz"


class _GatewayConsumer(Consumer):
    """The gateway's consumer: the rules it applies are told as the gateway's."""

    ROLE = "gateway"


class Gateway:
    """`csf-gateway` as an object an ASGI server serves: `uvicorn.run(Gateway(...))`.

    `apps` maps each caller app to its secret (the `--apps` file). `fallback` maps a
    service code to the fallbacks its calls use (as `Consumer.stub(fallback=...)`), for an
    application that embeds the gateway; without one a call the breaker or a `degrade`
    rule refuses answers 503.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        apps: Mapping[str, str],
        *,
        fallback: Mapping[str, Any] | None = None,
        observability: Observability | None = None,
    ) -> None:
        self.settings = settings
        self._signatures = Signatures(apps)
        self._fallback = fallback
        self._observability = observability or Observability()
        self._registry: Registry | None = None
        self._consumer: Consumer | None = None
        self._dispatcher: Dispatcher | None = None
        self._builder = CatalogueBuilder()
        self.catalogue: Catalogue | None = None
        self._watches: list[Subscription] = []
        self._subscribers: Subscribers | None = None
        self._limits = AppLimits()
        self._rules: dict[str, ServiceRules] = {}
        self._telemetry = RequestTelemetry(None, None, settings.sample_ratio)
        self._asgi = Starlette(
            routes=[Route(HEALTHZ, self._healthz, methods=["GET"])],
            exception_handlers={HTTPException: self._starlette_error},
            lifespan=self._lifespan,
        )
        self._calls = request_response(self._handle)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Every path but /healthz is a call: straight to its handler, past the router.
        if scope["type"] == "http" and scope["path"] != HEALTHZ:
            await self._calls(scope, receive, send)
        else:
            await self._asgi(scope, receive, send)

    # -- life -------------------------------------------------------------------------

    @asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[None]:
        try:
            await self.start()
            yield
        finally:
            await self.close()

    async def start(self) -> None:
        settings = self.settings
        observed = self._observability
        # One tracer and meter provider for the gateway's own records and its consumer's.
        shared = Observability(
            tracing=observed.tracing,
            metrics=observed.metrics,
            tracer_provider=observed.tracer_provider or tracer_provider(observed, settings.app),
            meter_provider=observed.meter_provider or meter_provider(observed, settings.app),
            log_correlation=observed.log_correlation,
        )
        resolved = shared.resolve(settings.app)
        self._telemetry = RequestTelemetry(resolved.tracer, resolved.meter, settings.sample_ratio)
        self._registry = open_registry(settings.registry, startup_wait=settings.startup_wait)
        await self._registry.start()
        self._consumer = _GatewayConsumer(
            self._registry,
            settings.tenant,
            settings.app,
            app_secret=settings.app_secret,
            observability=shared,
            snapshot_dir=settings.snapshot_dir,
            startup_wait=settings.startup_wait,
        )
        await self._consumer.start()
        self._dispatcher = Dispatcher(self._consumer, self._fallback)
        self._subscribers = Subscribers(self._registry, settings.tenant)
        self._watches.append(
            self._registry.subscribe_descriptors(settings.tenant, self._on_descriptors)
        )

    async def close(self) -> None:
        watches, self._watches = self._watches, []
        for watch in watches:
            await watch.cancel()
        if self._subscribers is not None:
            await self._subscribers.close()
            self._subscribers = None
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
        if self._registry is not None:
            await self._registry.close()
            self._registry = None

    def _on_descriptors(self, nodes: Mapping[NodeKey, bytes]) -> None:
        assert self._consumer is not None and self._dispatcher is not None
        assert self._subscribers is not None
        catalogue = self._builder.update(nodes)
        self._subscribers.follow({service for service, _ in catalogue.built})
        # Watched before the first request needs them, and looked up once per change.
        self._rules = {code: self._consumer.rules(code) for code in catalogue.open_services}
        self._dispatcher.prepare(catalogue.open_methods)
        self.catalogue = catalogue

    # -- requests ---------------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        if self.catalogue is None or self._registry is None:
            return _json(503, {"status": "starting", "detail": "no descriptors read yet"})
        view = "live" if self._registry.connected else "last good view (ZooKeeper away)"
        services = sorted(self.catalogue.open_services)
        return _json(200, {"status": "serving", "registry": view, "open_services": services})

    async def _handle(self, request: Request) -> Response:
        given = _headers(request)
        record = self._telemetry.start(request.method, _path(request), given.get("traceparent"))
        token = otel_context.attach(trace.set_span_in_context(record.span))
        try:
            response = await self._answer(request, given, record)
        except HttpError as error:
            response = _error(error, record.trace_id)
        except Exception:
            logger.exception("the gateway failed on %s %s", request.method, _path(request))
            response = _error(HttpError(500, "INTERNAL", "the gateway failed"), record.trace_id)
        finally:
            otel_context.detach(token)
        if not isinstance(response, _Stream):
            self._telemetry.finish(record, response.status_code)
        return response

    async def _answer(self, request: Request, given: Mapping[str, str], record: Record) -> Response:
        settings = self.settings
        body = await _read_body(request, given, settings.max_body)
        app = record.app = self._signatures.verify(
            request.method, _signed_path(request), given, body
        )
        if self.catalogue is None:
            raise HttpError(503, "UNAVAILABLE", "the gateway has not read its services yet")
        found = self.catalogue.find(request.method, _path(request))
        method = found.method
        record.service, record.grpc_service = method.service, method.grpc_service
        record.method = method.name
        assert self._subscribers is not None
        within = settings.startup_wait
        subscribed = await self._subscribers.subscribed(method.service, app, within)
        if subscribed is None:
            raise HttpError(503, "UNAVAILABLE", "the service's subscriptions are not read yet")
        if not subscribed:
            raise HttpError(
                403, "PERMISSION_DENIED", f"app {app} is not subscribed to {method.service}"
            )
        assert self._consumer is not None and self._dispatcher is not None
        rules = self._rules.get(method.service)
        if rules is None:  # closed while this request waited for its subscriptions
            raise HttpError(404, "NOT_FOUND", f"no open service method at {_path(request)}")
        await self._limits.admit(rules, app, method.service, method.name)
        if method.kind == "stream_stream":
            raise HttpError(
                501, "UNIMPLEMENTED", "bidirectional streaming is not offered over HTTP/1.1"
            )
        timeout = headers.deadline(given.get(headers.TIMEOUT_HEADER), settings.max_timeout)
        # A call given a deadline takes it over the `timeout` rule's: the rule bounds it.
        ruled = rules.method_rule(TimeoutRule, method.name)
        if ruled is not None and ruled.timeout_ms is not None:
            timeout = min(timeout, ruled.timeout_ms / 1000)
        metadata = _metadata(given, app)
        try:
            if method.kind == "stream_unary":
                requests = transcode.from_lines(method.input, body)
                reply = await self._dispatcher.collect(method, requests, timeout, metadata)
                return _ok(transcode.reply(reply))
            request_message = _request(found, request, body)
            if method.kind == "unary_unary":
                reply = await self._dispatcher.unary(method, request_message, timeout, metadata)
                rule = found.rule
                return _ok(transcode.reply(reply, rule.response_body if rule else ""))
            call = self._dispatcher.stream(method, request_message, timeout, metadata)
            framing = framing_for(given.get("accept", ""))
            return await _streamed(call, framing, lambda status: self._ended(record, status))
        except grpc.aio.AioRpcError as failed:
            raise _failed(failed) from None

    def _ended(self, record: Record, status: int) -> None:
        self._telemetry.finish(record, status)

    async def _starlette_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "NOT_FOUND", 405: "UNIMPLEMENTED"}.get(status, "INVALID_ARGUMENT")
        return _error(HttpError(status, code, str(getattr(exc, "detail", ""))), "")


class _Stream(StreamingResponse):
    """A server stream's answer; `on_end` runs once however it ends: its last message
    sent, the call failed, or the caller hung up (even before the first message)."""

    def __init__(
        self, body: AsyncIterator[bytes], framing: Framing, on_end: Callable[[], None]
    ) -> None:
        super().__init__(body, media_type=framing.media_type)
        self._on_end = on_end

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_end()


async def _streamed(call: Any, framing: Framing, finish: Callable[[int], None]) -> Response:
    """A server stream's answer: errors before the first message get their own status;
    after it, the framing's last line or event says what failed."""
    status = 200
    messages = call.__aiter__()
    try:
        first = await anext(messages, None)
    except BaseException:
        call.cancel()
        raise

    async def body() -> AsyncIterator[bytes]:
        nonlocal status
        if first is None:
            return
        yield framing.message(transcode.to_json(first))
        try:
            async for message in messages:
                yield framing.message(transcode.to_json(message))
        except grpc.aio.AioRpcError as failed:
            error = _failed(failed)
            status = error.status
            yield framing.error(error)

    def ended() -> None:
        # Not left to the call's garbage collection: a traceback or a span may hold it.
        call.cancel()  # a call that ended ignores this
        finish(status)

    return _Stream(body(), framing, ended)


def _failed(failed: grpc.aio.AioRpcError) -> HttpError:
    return from_rpc(failed.code(), failed.details(), by_csf=refused_by_csf(failed))


def _headers(request: Request) -> dict[str, str]:
    """The request's headers, each name once (its first value), read in one pass."""
    found: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


def _metadata(given: Mapping[str, str], app: str) -> tuple[tuple[str, str], ...]:
    pairs: tuple[tuple[str, str], ...] = ((ORIGIN_APP_KEY, app),)
    key = headers.set_key(given.get(headers.SET_KEY_HEADER))
    return pairs if key is None else (*pairs, (SET_KEY_METADATA, key))


async def _read_body(request: Request, given: Mapping[str, str], limit: int) -> bytes:
    declared = given.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, "INVALID_ARGUMENT", f"the body is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "INVALID_ARGUMENT", f"the body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _path(request: Request) -> str:
    """The decoded path (without Starlette's URL object, built per request)."""
    path: str = request.scope["path"]
    return path


def _signed_path(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    query = request.scope.get("query_string") or b""
    path = raw.decode("latin-1")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _request(found: Found, request: Request, body: bytes) -> Any:
    if found.rule is None:
        return transcode.from_body(found.method.input, body)
    return transcode.from_http(found, request.query_params.multi_items(), body)


def _error(error: HttpError, trace_id: str) -> Response:
    extra = {}
    if error.retry_after is not None:
        extra["Retry-After"] = str(math.ceil(error.retry_after))
    return Response(encode(error, trace_id), error.status, extra, media_type="application/json")


def _ok(body: bytes) -> Response:
    return Response(body, 200, media_type="application/json")


def _json(status: int, value: object) -> Response:
    return Response(compact(value), status, media_type="application/json")
