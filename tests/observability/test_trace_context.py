"""W3C trace context as CSF sends and reads it, against OpenTelemetry's own propagator;
what an unsampled call sends; the span a forked copy gets; no reference cycle per call."""

import gc
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from kazoo.client import KazooClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import csf
from csf.observability._traceparent import extract, with_trace_context
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, pushed
from tests.observability.memory import Telemetry, server
from tests.strategies import examples

W3C = TraceContextTextMapPropagator()
HEX = "0123456789abcdef"

KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
VALUE_CHARS = "".join(map(chr, range(0x21, 0x7F))).replace(",", "").replace("=", "")
trace_states = st.lists(
    st.tuples(
        st.builds(str.__add__, st.sampled_from("abcxyz"), st.text(KEY_CHARS, max_size=12)),
        st.text(VALUE_CHARS, min_size=1, max_size=12),
    ),
    max_size=4,
).map(TraceState)
span_contexts = st.builds(
    SpanContext,
    trace_id=st.integers(1, 2**128 - 1),
    span_id=st.integers(1, 2**64 - 1),
    is_remote=st.just(True),
    trace_flags=st.integers(0, 255).map(TraceFlags),
    trace_state=trace_states,
)


def hex_text(size: int) -> st.SearchStrategy[str]:
    return st.text(HEX, min_size=size, max_size=size)


# Well-formed headers, near misses (case, spaces, versions, suffixes, zeros) and any text.
traceparents = st.one_of(
    st.builds("00-{}-{}-{}".format, hex_text(32), hex_text(16), hex_text(2)),
    st.builds(
        lambda version, ids, flags, suffix: f"{version}-{ids}-{flags}{suffix}",
        st.sampled_from(["00", "01", "ff", "0A", "cc"]),
        st.builds("{}-{}".format, hex_text(32), hex_text(16))
        | st.sampled_from(["0" * 32 + "-" + "1" * 16, "1" * 32 + "-" + "0" * 16]),
        hex_text(2) | st.sampled_from(["0G", "1", "001"]),
        st.sampled_from(["", " ", "\t", "-", "-x", "-01", "\n"]),
    ).map(lambda header: header.upper() if header.startswith("cc") else header),
    st.builds(
        lambda header: " " + header, st.builds("00-{}-{}-01".format, hex_text(32), hex_text(16))
    ),
    st.text(max_size=80),
)
trace_metadata = st.lists(
    st.tuples(st.sampled_from(["traceparent", "tracestate", "x-other"]), traceparents)
    | st.tuples(st.just("tracestate"), st.sampled_from(["a=1", "b=2,c=3", "=", "a=1,a=2"]))
    | st.tuples(st.just("traceparent"), st.binary(max_size=8)),
    max_size=4,
)


def parent_of(context: Any) -> SpanContext:
    return trace.get_current_span(context).get_span_context()


def official_read(metadata: list[tuple[str, Any]]) -> SpanContext:
    """What OpenTelemetry's propagator reads from the same headers (text values only)."""
    carrier: dict[str, list[str]] = {}
    for key, value in metadata:
        if isinstance(value, str):
            carrier.setdefault(key, []).append(value)
    return parent_of(W3C.extract(carrier))


@examples(1000)
@given(span_contexts, st.lists(st.tuples(st.sampled_from(["a", "traceparent"]), st.text())))
def test_trace_context_csf_sends_is_what_the_official_propagator_sends_and_reads_back(
    context: SpanContext, before: list[tuple[str, str]]
) -> None:
    sent = with_trace_context(before, context)
    official: dict[str, str] = {}
    W3C.inject(official, trace.set_span_in_context(trace.NonRecordingSpan(context)))
    assert [item for item in sent if item[0] in official] == list(official.items())
    assert [item for item in sent if item[0] not in official] == [
        item for item in before if item[0] != "traceparent"
    ]
    assert parent_of(extract(sent)) == context == official_read(list(sent))


@examples(2000)
@given(trace_metadata)
def test_any_trace_headers_read_as_the_official_propagator_reads_them(
    metadata: list[tuple[str, Any]],
) -> None:
    read = parent_of(extract(metadata))  # never raises
    assert read == official_read(metadata)
    assert read.is_valid or read == trace.INVALID_SPAN_CONTEXT


def test_an_invalid_context_sends_no_trace_headers() -> None:
    stale = [("traceparent", "00-" + "1" * 32 + "-" + "1" * 16 + "-01"), ("k", "v")]
    assert with_trace_context(stale, trace.INVALID_SPAN_CONTEXT) == (("k", "v"),)


class Listening(Greeter):
    """A Greeter that keeps the traceparent each call brought."""

    def __init__(self) -> None:
        super().__init__(lambda: "")
        self.received: list[str | None] = []

    async def SayHello(self, request: Any, context: Any) -> Any:
        sent = dict(context.invocation_metadata())
        self.received.append(sent.get("traceparent"))
        return greeter_pb2.HelloReply(message="hi")


async def test_an_unsampled_call_records_nothing_and_tells_the_provider_not_to_sample(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    dropped = InMemorySpanExporter()
    never = TracerProvider(sampler=ALWAYS_OFF)
    never.add_span_processor(SimpleSpanProcessor(dropped))
    listening = Listening()
    provider = csf.Server(registry="static://127.0.0.1:1", tenant="T", deregister_wait=0,
                          handle_signals=False, observability=telemetry.config)  # fmt: skip
    provider.add(listening)
    async with provider:
        observability = csf.Observability(tracer_provider=never, metrics=False)
        consumer = csf.Consumer(registry=f"static://{provider.address}", tenant="T", app="web",
                                snapshot_dir=tmp_path, observability=observability)  # fmt: skip
        async with consumer:
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
            for _ in range(3):
                await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
    never.shutdown()
    assert dropped.get_finished_spans() == ()
    assert len(listening.received) == 3
    for header in listening.received:
        assert header is not None
        assert header.startswith("00-") and not int(header[-2:], 16) & 1, header  # unsampled
    # The provider samples by its parent (the default): it traces none of these calls.
    assert telemetry.finished() == []


async def test_forked_copies_each_send_their_own_attempt_span(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path, telemetry: Telemetry
) -> None:
    providers = [server(zookeeper, tenant, Greeter(lambda: ""), telemetry) for _ in range(2)]
    consumer = consumer_for(zookeeper.url, tenant, tmp_path, "web", telemetry.config)
    async with providers[0], providers[1], consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=10,
                             methods={"SayHello": csf.MethodConfig(idempotent=True)})  # fmt: skip
        directory = consumer.directory("XIESR")
        await directory.wait_listed()
        rule = {"schema": 1, "cluster": "forking", "retries": 1}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "retry", rule)
        await stub.SayHello(greeter_pb2.HelloRequest(name="x"))

    spans = telemetry.finished()
    clients = [s for s in spans if s.kind is SpanKind.CLIENT]
    (logical,) = [s for s in clients if s.parent is None]
    copies = [s for s in clients if s.parent is not None]
    assert sorted(s.attributes["csf.attempt"] for s in copies) == [0, 1]  # type: ignore[index]
    assert {s.parent.span_id for s in copies} == {logical.context.span_id}  # type: ignore[union-attr]
    served = [s for s in spans if s.kind is SpanKind.SERVER]
    assert served, "at least the winning copy reached a provider"
    copy_ids = {s.context.span_id for s in copies}
    assert all(s.parent is not None and s.parent.span_id in copy_ids for s in served)


async def test_a_traced_call_leaves_no_reference_cycle_behind(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    provider = csf.Server(registry="static://127.0.0.1:1", tenant="T", deregister_wait=0,
                          handle_signals=False, observability=telemetry.config)  # fmt: skip
    provider.add(Greeter(lambda: ""))
    async with provider:
        consumer = csf.Consumer(registry=f"static://{provider.address}", tenant="T", app="web",
                                snapshot_dir=tmp_path, observability=telemetry.config)  # fmt: skip
        async with consumer:
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
            await stub.SayHello(greeter_pb2.HelloRequest(name="x"))  # everything made once
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                for _ in range(5):
                    await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
                gc.collect()
                left = [type(item).__name__ for item in gc.garbage]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
    assert len([s for s in telemetry.finished() if s.kind is SpanKind.CLIENT]) == 6
    # Only collected cycles land in gc.garbage: a call's own objects must not be among them.
    assert not {"Invocation", "Task", "_Span"} & set(left), left
