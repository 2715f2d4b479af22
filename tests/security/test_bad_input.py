"""Bad input on the provider: each kind answered with its own status, while every valid
call sent meanwhile is served."""

import asyncio
from collections import Counter
from pathlib import Path

import grpc

from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_server
from tests.load import paced
from tests.security.servicers import SizingGreeter

RATE, SECONDS = 100, 3.0
LIMIT = 64 * 1024
SAY_HELLO = "/demo.Greeter/SayHello"
VALID = greeter_pb2.HelloRequest(name="x").SerializeToString()
BAD_INPUT = {
    # name: (method, request bytes, metadata, the status it must get)
    "garbage protobuf": (SAY_HELLO, b"\xff\xff\xff\xff", (), grpc.StatusCode.INVALID_ARGUMENT),
    "unknown method": ("/demo.Greeter/Nope", VALID, (), grpc.StatusCode.UNIMPLEMENTED),
    "message over the maximum": (
        SAY_HELLO,
        greeter_pb2.HelloRequest(name="x" * (LIMIT + 1)).SerializeToString(),
        (),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ),
    "oversized metadata": (
        SAY_HELLO, VALID, (("x-pad", "y" * 12_000),), grpc.StatusCode.RESOURCE_EXHAUSTED,
    ),
}  # fmt: skip


async def send_bad_input(address: str, stop: asyncio.Event, answers: Counter[str]) -> None:
    """Cycle through every kind of bad input until `stop` is set (at most 2,000 calls)."""
    async with grpc.aio.insecure_channel(address) as channel:
        for index in range(2_000):
            if stop.is_set():
                return
            name = list(BAD_INPUT)[index % len(BAD_INPUT)]
            method, request, metadata, expected = BAD_INPUT[name]
            try:
                await channel.unary_unary(method)(request, metadata=metadata, timeout=5)
                answers[f"{name}: OK"] += 1
            except grpc.aio.AioRpcError as error:
                verdict = "right" if error.code() == expected else f"got {error.code().name}"
                answers[f"{name}: {verdict}"] += 1


async def test_bad_input_gets_its_status_and_every_valid_call_sent_meanwhile_is_served(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, figures: list[str]
) -> None:
    # SizingGreeter answers small whatever it is asked, so only the provider's limit on
    # what it receives can refuse the oversized message.
    SizingGreeter.handled = 0
    server = greeter_server(
        zookeeper.url, tenant, SizingGreeter, max_message_bytes=LIMIT, max_metadata_bytes=8 * 1024
    )
    async with server, consumer_for(zookeeper.url, tenant, tmp_path) as consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=2)
        await stub.SayHello(greeter_pb2.HelloRequest(name="warm-up"))
        answers: Counter[str] = Counter()
        valid_done = asyncio.Event()
        senders = asyncio.gather(
            *(send_bad_input(server.address, valid_done, answers) for _ in range(4))
        )
        call = stub.SayHello
        try:
            valid = await paced(lambda: call(greeter_pb2.HelloRequest(name="ok")), RATE, SECONDS)
            bad_meanwhile = sum(answers.values())
        finally:
            valid_done.set()
            await senders
        after = await stub.SayHello(greeter_pb2.HelloRequest(name="after"))
    figures.append(
        f"bad input: {sum(answers.values())} bad calls answered {dict(answers)}; "
        f"valid: {valid.summary()}"
    )
    assert {key for key in answers if not key.endswith(": right")} == set()
    assert all(answers[f"{name}: right"] > 0 for name in BAD_INPUT)
    assert bad_meanwhile >= len(BAD_INPUT), "bad calls were refused while valid ones ran"
    assert (valid.offered, valid.ok, valid.failed) == (int(RATE * SECONDS), int(RATE * SECONDS), 0)
    assert after.message == str(len("after"))
    assert SizingGreeter.handled == valid.ok + 2, "no bad call reached the handler"
