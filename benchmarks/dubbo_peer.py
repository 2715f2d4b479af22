"""apache-dubbo (PyPI `apache-dubbo`) on the same echo workload, as a peer for CSF.

    python benchmarks/dubbo_peer.py server
    python benchmarks/dubbo_peer.py client ADDRESS --concurrency 64 --payload 100 --seconds 2

The server speaks Dubbo's Triple protocol with the demo's protobuf messages and prints
`serving HOST:PORT`, then serves until its standard input closes. Dubbo's client is
blocking, so the client runs `concurrency` threads, each calling as fast as it can, and
prints one line of JSON in the shape of bench_overhead's runs. The client's CPU time is
its own process's; the server's is read by the caller from /proc.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import dubbo
from bench_overhead import run_figures
from dubbo.configs import ReferenceConfig, ServiceConfig
from dubbo.proxy.handlers import RpcMethodHandler, RpcServiceHandler

from csf.testing.zookeeper import free_port
from demo import greeter_pb2

SERVICE = "demo.Greeter"


def serve() -> None:
    def say_hello(request: greeter_pb2.HelloRequest) -> greeter_pb2.HelloReply:
        return greeter_pb2.HelloReply(message=request.name)

    handler = RpcMethodHandler.unary(
        say_hello,
        method_name="SayHello",
        request_deserializer=greeter_pb2.HelloRequest.FromString,
        response_serializer=greeter_pb2.HelloReply.SerializeToString,
    )
    port = free_port()
    config = ServiceConfig(
        RpcServiceHandler(service_name=SERVICE, method_handlers=[handler]),
        host="127.0.0.1",
        port=port,
    )
    dubbo.Server(config).start()
    print(f"serving 127.0.0.1:{port}", flush=True)
    sys.stdin.read()


def load(address: str, concurrency: int, payload: int, seconds: float) -> dict[str, Any]:
    client = dubbo.Client(ReferenceConfig.from_url(f"tri://{address}/{SERVICE}"))
    say_hello = client.unary(
        "SayHello",
        request_serializer=greeter_pb2.HelloRequest.SerializeToString,
        response_deserializer=greeter_pb2.HelloReply.FromString,
    )
    request = greeter_pb2.HelloRequest(name="x" * payload)
    say_hello(request)  # connect before the clock starts
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def caller() -> None:
        nonlocal errors
        mine: list[float] = []
        failed = 0
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                say_hello(request)
            except Exception:
                failed += 1
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            errors += failed

    cpu_before, start = time.process_time(), time.monotonic()
    threads = [threading.Thread(target=caller) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu_before
    figures = run_figures(latencies, errors, elapsed)
    figures["client_cpu_us"] = cpu / max(1, figures["calls"]) * 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    modes.add_parser("server")
    client = modes.add_parser("client")
    client.add_argument("address")
    client.add_argument("--concurrency", type=int, required=True)
    client.add_argument("--payload", type=int, required=True)
    client.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    if args.mode == "server":
        serve()
    else:
        result = load(args.address, args.concurrency, args.payload, args.seconds)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
