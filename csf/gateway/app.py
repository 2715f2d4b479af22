"""The gateway as an ASGI application: HTTP/JSON in, governed CSF calls out.

Each request passes the checks in DESIGN's order: body size (413), caller (401), route
(404, 405), subscription (403), rate limit (429), call kind (501), body (400), then the
call. Every answer, errors included, is JSON. The registry session is the process's one
ZooKeeper session: descriptors and subscriptions are watched through it, and the
dispatching `csf.Consumer` shares it.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, request_response

from csf.auth import ORIGIN_APP_KEY
from csf.consumer import Consumer
from csf.gateway import headers, transcode
from csf.gateway.access import AccessError, Signatures
from csf.gateway.catalogue import Catalogue, CatalogueBuilder, Found, NodeKey
from csf.gateway.dispatch import Dispatcher, replies
from csf.gateway.errors import HttpError, compact, encode, from_rpc
from csf.gateway.limits import AppLimits
from csf.gateway.settings import GatewaySettings
from csf.gateway.subscribers import Subscribers
from csf.observability import Observability
from csf.observability._traceparent import VERSION_00
from csf.observability.providers import meter_provider, tracer_provider
from csf.registry import Registry, Subscription, open_registry
from csf.set_rule import SET_KEY_METADATA

logger = logging.getLogger("csf.gateway")
access_log = logging.getLogger("csf.gateway.access")

HEALTHZ = "/healthz"
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"


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
        self._tracer: trace.Tracer | None = None
        self._requests: Any = None
        self._durations: Any = None
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
        await self.start()
        try:
            yield
        finally:
            await self.close()

    async def start(self) -> None:
        settings = self.settings
        observed = self._observability
        tracers = observed.tracer_provider or tracer_provider(observed, settings.app)
        meters = observed.meter_provider or meter_provider(observed, settings.app)
        shared = Observability(
            tracing=observed.tracing,
            metrics=observed.metrics,
            tracer_provider=tracers,
            meter_provider=meters,
            log_correlation=observed.log_correlation,
        )
        telemetry = shared.resolve(settings.app)
        self._tracer = telemetry.tracer
        if telemetry.meter is not None:
            self._requests = telemetry.meter.create_counter(
                "csf.gateway.requests", description="HTTP requests answered by the gateway"
            )
            self._durations = telemetry.meter.create_histogram(
                "csf.gateway.duration", unit="s", description="HTTP request duration"
            )
        self._registry = open_registry(settings.registry, startup_wait=settings.startup_wait)
        await self._registry.start()
        self._consumer = Consumer(
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
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
        if self._registry is not None:
            await self._registry.close()
            self._registry = None

    def _on_descriptors(self, nodes: Mapping[NodeKey, bytes]) -> None:
        assert self._consumer is not None and self._dispatcher is not None
        catalogue = self._builder.update(nodes)
        assert self._subscribers is not None
        self._subscribers.follow({service for service, _ in catalogue.built})
        for code in catalogue.open_services:
            self._consumer.rules(code)  # watched before the first request needs them
        self._dispatcher.prepare(catalogue.open_methods)
        self.catalogue = catalogue

    # -- requests ---------------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        if self.catalogue is None:
            return _json(503, {"status": "starting", "detail": "no descriptors read yet"})
        connected = getattr(self._registry, "connected", True)
        view = "live" if connected else "last good view (ZooKeeper away)"
        services = sorted(self.catalogue.open_services)
        return _json(200, {"status": "serving", "registry": view, "open_services": services})

    async def _handle(self, request: Request) -> Response:
        started = time.perf_counter()
        given = _headers(request)
        span = self._server_span(request, given)
        token = otel_context.attach(trace.set_span_in_context(span))
        outcome = _Outcome()
        try:
            response = await self._answer(request, given, span, outcome)
        except HttpError as error:
            response = self._error(error, span)
        except Exception:
            logger.exception("the gateway failed on %s %s", request.method, _path(request))
            response = self._error(HttpError(500, "INTERNAL", "the gateway failed"), span)
        finally:
            otel_context.detach(token)
        if isinstance(response, StreamingResponse):
            outcome.on_end(lambda status: self._finish(request, span, started, outcome, status))
        else:
            self._finish(request, span, started, outcome, response.status_code)
        return response

    async def _answer(
        self, request: Request, given: Mapping[str, str], span: trace.Span, outcome: _Outcome
    ) -> Response:
        settings = self.settings
        body = await _read_body(request, given, settings.max_body)
        try:
            app = self._signatures.verify(request.method, _signed_path(request), given, body)
        except AccessError as refused:
            raise HttpError(
                refused.status, refused.code, refused.message, refused.retry_after
            ) from None
        outcome.app = app
        if self.catalogue is None:
            raise HttpError(503, "UNAVAILABLE", "the gateway has not read its services yet")
        found = self.catalogue.find(request.method, _path(request))
        method = found.method
        outcome.service, outcome.method = method.service, method.name
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
        await self._limits.admit(
            self._consumer.rules(method.service), app, method.service, method.name
        )
        if method.kind == "stream_stream":
            raise HttpError(
                501, "UNIMPLEMENTED", "bidirectional streaming is not offered over HTTP/1.1"
            )
        timeout = headers.deadline(given.get(headers.TIMEOUT_HEADER), settings.max_timeout)
        metadata = _metadata(given, app)
        span.set_attribute("csf.app", app)
        span.set_attribute("rpc.service", method.grpc_service)
        span.set_attribute("rpc.method", method.name)
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
            return await _streamed(call, SSE in given.get("accept", ""), outcome)
        except grpc.aio.AioRpcError as failed:
            raise from_rpc(failed.code(), failed.details()) from None

    # -- telemetry ----------------------------------------------------------------------

    def _server_span(self, request: Request, given: Mapping[str, str]) -> trace.Span:
        if self._tracer is None:
            return trace.INVALID_SPAN
        parent = _caller_trace(given.get("traceparent"), self.settings.sample_ratio)
        return self._tracer.start_span(
            f"{request.method} {_path(request)}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": _path(request)},
        )

    def _error(self, error: HttpError, span: trace.Span) -> Response:
        extra = {}
        if error.retry_after is not None:
            extra["Retry-After"] = str(math.ceil(error.retry_after))
        body = encode(error, _trace_id(span))
        return Response(body, error.status, extra, media_type="application/json")

    def _finish(
        self, request: Request, span: trace.Span, started: float, outcome: _Outcome, status: int
    ) -> None:
        elapsed = time.perf_counter() - started
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(trace.StatusCode.ERROR)
        span.end()
        attributes = {
            "csf.app": outcome.app or "",
            "csf.service": outcome.service or "",
            "rpc.method": outcome.method or "",
            "http.response.status_code": status,
        }
        if self._requests is not None:
            self._requests.add(1, attributes)
            self._durations.record(elapsed, attributes)
        access_log.info(
            "%s %s %d %.1fms app=%s trace_id=%s",
            request.method,
            _path(request),
            status,
            elapsed * 1000,
            outcome.app or "-",
            _trace_id(span) or "-",
        )

    async def _starlette_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "NOT_FOUND", 405: "UNIMPLEMENTED"}.get(status, "INVALID_ARGUMENT")
        return self._error(
            HttpError(status, code, str(getattr(exc, "detail", ""))), trace.INVALID_SPAN
        )


class _Outcome:
    """What a request turned out to be, for its metrics and access log line."""

    def __init__(self) -> None:
        self.app: str | None = None
        self.service: str | None = None
        self.method: str | None = None
        self._on_end: Callable[[int], None] | None = None
        self.status = 200

    def on_end(self, callback: Callable[[int], None]) -> None:
        self._on_end = callback

    def ended(self) -> None:
        if self._on_end is not None:
            self._on_end(self.status)


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
    if declared.isdigit() and int(declared) > limit:
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


async def _streamed(call: Any, sse: bool, outcome: _Outcome) -> Response:
    """A server stream's answer: errors before the first message get their own status;
    after it, a last NDJSON line or SSE event says what failed."""
    messages = replies(call)
    try:
        first = await anext(messages)
    except StopAsyncIteration:
        first = None

    async def body() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield _frame(transcode.to_json(first), sse)
                async for message in messages:
                    yield _frame(transcode.to_json(message), sse)
        except grpc.aio.AioRpcError as failed:
            error = from_rpc(failed.code(), failed.details())
            outcome.status = error.status
            shape = {"code": error.code, "message": error.message}
            yield (
                (b"event: error\ndata: " + compact(shape) + b"\n\n")
                if sse
                else compact({"error": shape}) + b"\n"
            )
        finally:
            await messages.aclose()
            outcome.ended()

    return StreamingResponse(body(), media_type=SSE if sse else NDJSON)


def _frame(message: dict[str, Any], sse: bool) -> bytes:
    if sse:
        return b"data: " + compact(message) + b"\n\n"
    return compact({"result": message}) + b"\n"


def _ok(body: bytes) -> Response:
    return Response(body, 200, media_type="application/json")


def _json(status: int, value: object) -> Response:
    return Response(compact(value), status, media_type="application/json")


def _trace_id(span: trace.Span) -> str:
    context = span.get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""


def _caller_trace(header: str | None, sample_ratio: float) -> otel_context.Context | None:
    """The caller's trace id, continued, with the gateway's own sampling decision: a
    caller's sampled flag cannot force every request to be traced."""
    if header is None or len(header) > 128:
        return None
    match = VERSION_00.fullmatch(header.strip())
    if match is None or not int(match[1], 16) or not int(match[2], 16):
        return None
    flags = TraceFlags.SAMPLED if random.random() < sample_ratio else TraceFlags.DEFAULT
    remote = SpanContext(int(match[1], 16), int(match[2], 16), True, TraceFlags(flags))
    return trace.set_span_in_context(NonRecordingSpan(remote))
