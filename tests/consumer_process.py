"""A consumer in its own process, for tests: calls SayHello every 20 ms (for at most
--seconds) and prints `provider` or `fallback` whenever its answers change source."""

import argparse
import asyncio
import time
from typing import Any

import csf
from demo import greeter_pb2, greeter_pb2_grpc

FALLBACK = "fallback"


async def fallback(request: Any, error: BaseException) -> greeter_pb2.HelloReply:
    return greeter_pb2.HelloReply(message=FALLBACK)


async def main(registry: str, tenant: str, seconds: float) -> None:
    async with csf.Consumer(registry=registry, tenant=tenant, app="watcher") as consumer:
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=1.0,
            fallback={"SayHello": fallback},
        )  # fmt: skip
        last = ""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            reply = await stub.SayHello(greeter_pb2.HelloRequest(name="w"))
            source = FALLBACK if reply.message == FALLBACK else "provider"
            if source != last:
                print(source, flush=True)
                last = source
            await asyncio.sleep(0.02)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--registry", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    asyncio.run(main(args.registry, args.tenant, args.seconds))
