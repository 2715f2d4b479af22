"""The CSF demo: a ZooKeeper, three provider processes, a consumer, the gateway and the console.

python -m demo                 # everything, on a local ZooKeeper unless CSF_ZK is set
python -m demo --keep          # the same, then keep it running (try the console) until Ctrl-C
python -m demo provider --registry zk://127.0.0.1:2181 --tenant TenantA
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import csf
from csf.testing.zookeeper import LocalZooKeeper, ZooKeeperUnavailable
from demo import greeter_pb2, greeter_pb2_grpc
from demo.console import console_beside
from demo.gateway import show_gateway
from demo.providers import serve

TENANT = "TenantA"
PROVIDERS = 3
CALLS = 12


async def start_provider(registry: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "demo", "provider", "--registry", registry, "--tenant", TENANT,
        stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    if not line.startswith("serving "):
        raise RuntimeError(f"provider did not start: {line!r}")
    return process, line.removeprefix("serving ")


async def run_demo(registry: str, snapshot_dir: Path, keep: bool = False) -> None:
    print(f"registry: {registry}")
    started = await asyncio.gather(*(start_provider(registry) for _ in range(PROVIDERS)))
    processes = [process for process, _ in started]
    for _, address in started:
        print(f"provider process up at {address}")
    try:
        async with console_beside(registry, TENANT):
            if not await _until_stopped(_calls(registry, snapshot_dir, processes)):
                return
            if keep:
                print("running until Ctrl-C (or SIGTERM): try the console")
                await _until_stopped(asyncio.Event().wait())
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        await asyncio.gather(*(process.wait() for process in processes))
    print("demo finished: every call succeeded")


async def _until_stopped(work: Coroutine[Any, Any, object]) -> bool:
    """Run `work` unless Ctrl-C or SIGTERM comes first (then it is cancelled, and
    everything the demo started is stopped as it unwinds); whether it finished."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        stopped.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    print("stopped: stopping the providers, the console and ZooKeeper")
    return False


async def _calls(
    registry: str, snapshot_dir: Path, processes: list[asyncio.subprocess.Process]
) -> None:
    async with csf.Consumer(
        registry=registry, tenant=TENANT, app="demo-web", snapshot_dir=snapshot_dir
    ) as consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=2.0)
        directory = consumer.directory("XIESR")
        served: collections.Counter[str] = collections.Counter()
        for index in range(CALLS):
            reply = await stub.SayHello(greeter_pb2.HelloRequest(name=f"call-{index}"))
            served[reply.served_by] += 1
            print(f"SayHello #{index:2d}: {reply.message!r:14} served by {reply.served_by}")
        print(f"calls per provider: {dict(sorted(served.items()))}")
        names = [greeter_pb2.HelloRequest(name=name) for name in ("ann", "bob", "cid")]
        async for reply in stub.StreamHellos(greeter_pb2.HelloRequest(name="ann", count=2)):
            print(f"StreamHellos: {reply.message!r} from {reply.served_by}")
        reply = await stub.CollectHellos(iter(names))
        print(f"CollectHellos: {reply.message!r} from {reply.served_by}")
        async for reply in stub.Chat(iter(names)):
            print(f"Chat: {reply.message!r} from {reply.served_by}")
        victim = processes[0]
        print(f"stopping provider pid {victim.pid} gracefully (SIGTERM) ...")
        victim.terminate()
        await victim.wait()
        # The provider deregistered before it exited; give the watch a moment.
        async with asyncio.timeout(10):
            while len(directory.endpoints) != PROVIDERS - 1:  # noqa: ASYNC110 (bounded)
                await asyncio.sleep(0.05)
        print(f"consumer now sees {sorted(directory.endpoints)}")
        for index in range(4):
            reply = await stub.SayHello(greeter_pb2.HelloRequest(name=f"after-{index}"))
            print(f"SayHello after the stop: served by {reply.served_by}")
    await show_gateway(registry, TENANT, snapshot_dir.parent)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    one = commands.add_parser("provider", help="run one Greeter provider until SIGTERM")
    one.add_argument("--registry", required=True)
    one.add_argument("--tenant", default=TENANT)
    one.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--keep", action="store_true", help="keep everything running (try the console) until Ctrl-C"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "provider":
        asyncio.run(serve(args.registry, args.tenant, args.port))
        return
    with tempfile.TemporaryDirectory(prefix="csf-demo-") as work:
        registry = os.environ.get("CSF_ZK")
        if registry:
            asyncio.run(run_demo(registry, Path(work) / "snapshots", args.keep))
            return
        try:
            with LocalZooKeeper(Path(work) / "zookeeper") as zookeeper:
                print(f"started a local ZooKeeper on {zookeeper.hosts}")
                asyncio.run(run_demo(zookeeper.url, Path(work) / "snapshots", args.keep))
        except ZooKeeperUnavailable as exc:
            raise SystemExit(f"cannot start a local ZooKeeper: {exc}; or set CSF_ZK") from None


if __name__ == "__main__":
    main()
