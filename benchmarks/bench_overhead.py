"""What governance costs next to raw grpc.aio: the same echo call, four ways, side by side.

    python benchmarks/bench_overhead.py [--quick] [--loop asyncio|uvloop] [--out FILE]

(a) raw: a grpc.aio stub and channel to a plain grpc.aio server
(b) empty: CSF with only load balancing in the chain
(c) default: CSF's default chain, with rate and concurrency limits set high enough never
    to bind, breaker and retry policy in place
(d) traced: (c) with tracing at 100% sampling into a batching exporter that drops spans,
    on both sides
(e) traced_1pct: (d) with the consumer sampling 1% of calls (the provider follows it)
(f) otel: plain grpc.aio with the official OpenTelemetry gRPC instrumentation, 100%
    sampled into the same dropping exporter, on both sides (benchmarks/otel_peer.py)
streams: a server stream of 1,000 messages read whole, and a bidi echo of 1,000
    messages, raw next to CSF's default chain
peer: apache-dubbo (Triple protocol, the same protobuf messages) at concurrency 16 and 64
    with 100 B, when the `apache-dubbo` package is installed; its blocking client runs in
    its own process with one thread per in-flight call (benchmarks/dubbo_peer.py)

The servers run in their own processes on 127.0.0.1, this process is the client. The
variants alternate within every round, so drift on this shared machine hits all alike;
figures are medians over rounds, with the spread of each ratio to raw. `--loop uvloop`
runs the client and the raw and CSF servers on uvloop's loop (the otel and dubbo peers
are left out then).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).parent / "results" / "bench_overhead.json"
DUBBO_PEER = Path(__file__).parent / "dubbo_peer.py"
OTEL_PEER = Path(__file__).parent / "otel_peer.py"
UVLOOP_OUT = DEFAULT_OUT.with_stem("bench_overhead_uvloop")
VARIANTS = ("raw", "empty", "default", "traced", "traced_1pct", "otel", "dubbo")
# Each variant's server process, by its name in Servers.
SERVER_OF = {"raw": "raw", "empty": "csf", "default": "csf", "traced": "traced",
             "traced_1pct": "traced", "otel": "otel", "dubbo": "dubbo"}  # fmt: skip
DUBBO_CONCURRENCY = (16, 64)
# apache-dubbo 3.0.0b1's blocking client stops answering with 4 KiB messages here.
DUBBO_PAYLOADS = ("100B",)
HAS_DUBBO = importlib.util.find_spec("dubbo") is not None
CONCURRENCY = (1, 16, 64, 256)
PAYLOADS = {"100B": 100, "4KiB": 4096}
TICK = os.sysconf("SC_CLK_TCK")
STREAM_MESSAGES = 1_000
NOT_BINDING = {
    "ratelimit": {"schema": 1, "rate": 1_000_000, "burst": 1_000_000},
    "concurrency": {"schema": 1, "consumer": 100_000, "provider": 100_000},
}

Call = Callable[[greeter_pb2.HelloRequest], Awaitable[Any]]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Servers:
    """The server processes, started and stopped together."""

    def __init__(self, registry: str, loop: str) -> None:
        self.registry = registry
        self.loop = loop
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.addresses: dict[str, str] = {}

    def start(self) -> None:
        echo = [sys.executable, str(ROOT / "benchmarks" / "echo_server.py")]
        for mode, tenant in (("raw", "-"), ("csf", "Bench"), ("traced", "BenchTraced")):
            options = ["--mode", mode, "--registry", self.registry, "--tenant", tenant]
            self._start(mode, [*echo, *options, "--loop", self.loop])
        if self.loop != "asyncio":
            return
        self._start("otel", [sys.executable, str(OTEL_PEER)])
        if HAS_DUBBO:
            self._start("dubbo", [sys.executable, str(DUBBO_PEER), "server"])

    def _start(self, mode: str, command: list[str]) -> None:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, cwd=ROOT,
        )  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("serving "):
            raise SystemExit(f"echo server {mode} did not start: {line!r}")
        self.processes[mode] = process
        self.addresses[mode] = line.removeprefix("serving ")

    def stop(self) -> None:
        for process in self.processes.values():
            assert process.stdin is not None
            process.stdin.close()  # the dubbo peer serves until its input closes
            process.terminate()
        for process in self.processes.values():
            process.wait(timeout=30)


async def run_load(call: Call, payload: int, concurrency: int, seconds: float) -> dict[str, Any]:
    """`concurrency` callers calling as fast as they can for `seconds`."""
    request = greeter_pb2.HelloRequest(name="x" * payload)
    latencies: list[float] = []
    errors = 0
    end = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal errors
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                await call(request)
            except grpc.RpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    start = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return run_figures(latencies, errors, time.monotonic() - start)


async def requests() -> AsyncIterator[greeter_pb2.HelloRequest]:
    request = greeter_pb2.HelloRequest(name="x")
    for _ in range(STREAM_MESSAGES):
        yield request


async def run_streams(stub: Any, kind: str, seconds: float) -> dict[str, Any]:
    """Streams of STREAM_MESSAGES read whole, one after another, for `seconds`: server
    streams (`kind` "server") or bidi echoes ("bidi", requests and replies at once)."""
    durations: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end or not durations:
        started = time.perf_counter()
        if kind == "server":
            call = stub.StreamHellos(greeter_pb2.HelloRequest(name="x", count=STREAM_MESSAGES))
        else:
            call = stub.Chat(requests())
        received = 0
        async for _ in call:
            received += 1
        assert received == STREAM_MESSAGES, received
        durations.append(time.perf_counter() - started)
    durations.sort()
    median = durations[len(durations) // 2]
    return {"streams": len(durations), "ms_per_stream": median * 1e3,
            "messages_per_s": STREAM_MESSAGES / median}  # fmt: skip


def run_figures(latencies: list[float], errors: int, elapsed: float) -> dict[str, Any]:
    """Calls, errors, calls/s and p50/p99 in microseconds of one run."""
    latencies.sort()
    count = len(latencies)
    return {
        "calls": count,
        "errors": errors,
        "calls_per_s": count / elapsed,
        "p50_us": latencies[count // 2] * 1e6 if count else None,
        "p99_us": latencies[min(count - 1, int(count * 0.99))] * 1e6 if count else None,
    }


async def run_dubbo(
    address: str, payload: int, concurrency: int, seconds: float
) -> dict[str, Any] | None:
    """One run of the apache-dubbo peer's client process; its figures come back as JSON.
    None when the client stops answering."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(DUBBO_PEER), "client", address, "--concurrency", str(concurrency),
        "--payload", str(payload), "--seconds", str(seconds),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), seconds + 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def measure(
    quick: bool, rounds: int | None, seconds: float | None, loop: str
) -> dict[str, Any]:
    rounds = rounds or (2 if quick else 5)
    seconds = seconds or (0.5 if quick else 2.0)
    concurrency = (1, 64) if quick else CONCURRENCY
    payloads = {"100B": 100} if quick else PAYLOADS
    with (
        tempfile.TemporaryDirectory(prefix="csf-bench-") as work,
        LocalZooKeeper(Path(work) / "zk") as zookeeper,
    ):
        servers = Servers(zookeeper.url, loop)
        servers.start()
        kazoo = KazooClient(hosts=zookeeper.hosts)
        kazoo.start(timeout=10)
        for tenant in ("Bench", "BenchTraced"):
            for kind, rule in NOT_BINDING.items():
                kazoo.create(f"/busidomain/csf/{tenant}/XIESR/configs/{kind}",
                             json.dumps(rule).encode(), makepath=True)  # fmt: skip
        kazoo.stop()
        kazoo.close()
        try:
            figures = await _measure(
                servers, zookeeper.url, Path(work), rounds, seconds, concurrency, payloads
            )
            return {**figures, "loop": loop}
        finally:
            servers.stop()


async def _measure(
    servers: Servers,
    registry: str,
    work: Path,
    rounds: int,
    seconds: float,
    concurrency: tuple[int, ...],
    payloads: dict[str, int],
) -> dict[str, Any]:
    from echo_server import traced  # the same tracing set-up as the traced server

    off = csf.Observability(tracing=False, metrics=False)
    consumers = {
        "empty": csf.Consumer(registry=registry, tenant="Bench", app="bench", snapshot_dir=work,
                              chain=("load_balance",), observability=off),
        "default": csf.Consumer(registry=registry, tenant="Bench", app="bench",
                                snapshot_dir=work, observability=off),
        "traced": csf.Consumer(registry=registry, tenant="BenchTraced", app="bench",
                               snapshot_dir=work, observability=traced()),
        "traced_1pct": csf.Consumer(registry=registry, tenant="BenchTraced", app="bench",
                                    snapshot_dir=work, observability=traced(ratio=0.01)),
    }  # fmt: skip
    channel = grpc.aio.insecure_channel(servers.addresses["raw"])
    channels = [channel]
    calls: dict[str, Call] = {"raw": greeter_pb2_grpc.GreeterStub(channel).SayHello}
    streams = {"raw": greeter_pb2_grpc.GreeterStub(channel)}
    if "otel" in servers.addresses:
        from otel_peer import client_channel

        channels.append(client_channel(servers.addresses["otel"]))
        calls["otel"] = greeter_pb2_grpc.GreeterStub(channels[-1]).SayHello
    for name, consumer in consumers.items():
        await consumer.start()
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=10)
        await consumer.directory("XIESR").wait_listed()
        calls[name] = stub.SayHello
        if name == "default":
            streams[name] = stub
    samples: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    stream_samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
    dubbo_answers = "dubbo" in servers.addresses
    for call in calls.values():  # warm every path up
        await run_load(call, 100, 4, 0.3)
    for _ in range(rounds):
        for level in concurrency:
            for payload_name, payload in payloads.items():
                for variant in VARIANTS:
                    if variant not in calls and variant != "dubbo":
                        continue
                    if variant == "dubbo" and not (
                        dubbo_answers
                        and level in DUBBO_CONCURRENCY
                        and payload_name in DUBBO_PAYLOADS
                    ):
                        continue
                    pid = servers.processes[SERVER_OF[variant]].pid
                    client_before, server_before = time.process_time(), cpu_seconds(pid)
                    if variant == "dubbo":
                        address = servers.addresses["dubbo"]
                        peer = await run_dubbo(address, payload, level, seconds)
                        if peer is None:
                            print("apache-dubbo stopped answering: peer left out", file=sys.stderr)
                            dubbo_answers = False
                            continue
                        result = peer
                    else:
                        result = await run_load(calls[variant], payload, level, seconds)
                        result["client_cpu_us"] = (
                            (time.process_time() - client_before) / max(1, result["calls"]) * 1e6
                        )
                    calls_made = max(1, result["calls"])
                    result["server_cpu_us"] = (cpu_seconds(pid) - server_before) / calls_made * 1e6
                    samples.setdefault((variant, level, payload_name), []).append(result)
        for kind in ("server", "bidi"):
            for variant, stub in streams.items():
                run = await run_streams(stub, kind, seconds)
                stream_samples.setdefault((kind, variant), []).append(run)
    for open_channel in channels:
        await open_channel.close()
    for consumer in consumers.values():
        await consumer.close()
    if not dubbo_answers:  # rounds with and without the peer cannot be compared
        for key in [key for key in samples if key[0] == "dubbo"]:
            del samples[key]
    streams_summary = summarize_streams(stream_samples)
    return {
        **summarize(samples, rounds, seconds),
        "streams": streams_summary,
        "goals": goals(samples, streams_summary),
    }


def _median_ratio(
    samples: dict[tuple[str, int, str], list[dict[str, Any]]], a: str, b: str, level: int
) -> float | None:
    """The median over rounds of variant a's calls/s over b's (100 B, `level` in flight)."""
    runs_a, runs_b = samples.get((a, level, "100B")), samples.get((b, level, "100B"))
    if not runs_a or not runs_b:
        return None
    ratios = [x["calls_per_s"] / y["calls_per_s"] for x, y in zip(runs_a, runs_b, strict=True)]
    return round(statistics.median(ratios), 3)


def _median_gap(
    samples: dict[tuple[str, int, str], list[dict[str, Any]]], key: str, level: int
) -> float | None:
    """The median over rounds of default's `key` minus raw's (100 B, `level` in flight)."""
    runs, raw_runs = samples.get(("default", level, "100B")), samples.get(("raw", level, "100B"))
    if not runs or not raw_runs:
        return None
    return round(statistics.median(r[key] - w[key] for r, w in zip(runs, raw_runs, strict=True)), 1)


def goals(
    samples: dict[tuple[str, int, str], list[dict[str, Any]]], streams: dict[str, Any]
) -> dict[str, Any]:
    """The figures issue 14's goals are stated in, each next to its target."""
    return {
        "default_over_raw_c64": (_median_ratio(samples, "default", "raw", 64), ">= 0.95"),
        "default_client_cpu_us_c64": (_median_gap(samples, "client_cpu_us", 64), "<= +15"),
        "default_server_cpu_us_c64": (_median_gap(samples, "server_cpu_us", 64), "<= +8"),
        "default_p50_us_c1": (_median_gap(samples, "p50_us", 1), "<= +40"),
        "traced_over_raw_c64": (_median_ratio(samples, "traced", "raw", 64), ">= 0.75"),
        "traced_over_otel_c64": (_median_ratio(samples, "traced", "otel", 64), ">= 1.4"),
        "traced_1pct_over_raw_c64": (_median_ratio(samples, "traced_1pct", "raw", 64), ">= 0.90"),
        "server_stream_over_raw": (streams["server"]["default_over_raw"], ">= 0.95"),
        "bidi_stream_over_raw": (streams["bidi"]["default_over_raw"], ">= 0.95"),
    }


def summarize_streams(samples: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, Any]:
    """Per stream kind: median time to read a whole stream per variant, and CSF's rate
    over raw's."""
    summary: dict[str, Any] = {"messages": STREAM_MESSAGES}
    for kind in ("server", "bidi"):
        ratios = [
            csf_run["messages_per_s"] / raw_run["messages_per_s"]
            for csf_run, raw_run in zip(samples[kind, "default"], samples[kind, "raw"], strict=True)
        ]
        summary[kind] = {
            **{f"{variant}_ms": round(statistics.median(r["ms_per_stream"] for r in runs), 2)
               for (of, variant), runs in samples.items() if of == kind},
            "default_over_raw": round(statistics.median(ratios), 3),
            "spread": round(max(ratios) - min(ratios), 3),
        }  # fmt: skip
    return summary


def summarize(
    samples: dict[tuple[str, int, str], list[dict[str, Any]]], rounds: int, seconds: float
) -> dict[str, Any]:
    rows = []
    for (variant, level, payload), runs in sorted(samples.items()):
        raw_runs = samples[("raw", level, payload)]
        ratios = [
            run["calls_per_s"] / raw["calls_per_s"] for run, raw in zip(runs, raw_runs, strict=True)
        ]
        row: dict[str, Any] = {"variant": variant, "concurrency": level, "payload": payload}
        for key in ("calls_per_s", "p50_us", "p99_us", "client_cpu_us", "server_cpu_us"):
            row[key] = round(statistics.median(run[key] for run in runs), 1)
        row["errors"] = sum(run["errors"] for run in runs)
        row["ratio_to_raw"] = round(statistics.median(ratios), 3)
        row["ratio_spread"] = round(max(ratios) - min(ratios), 3)
        rows.append(row)
    peers = []
    for (variant, level, payload), runs in sorted(samples.items()):
        if variant != "dubbo":
            continue
        csf_runs = samples[("default", level, payload)]
        ratios = [c["calls_per_s"] / d["calls_per_s"] for c, d in zip(csf_runs, runs, strict=True)]
        peers.append({
            "concurrency": level, "payload": payload,
            "csf_default_over_dubbo": round(statistics.median(ratios), 2),
            "spread": round(max(ratios) - min(ratios), 2),
        })  # fmt: skip
    machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} cores"
    return {
        "machine": f"{machine}, Python {platform.python_version()}",
        "grpcio": grpc.__version__,
        "rounds": rounds,
        "seconds_per_run": seconds,
        "results": rows,
        "dubbo": peers,
    }


COLUMNS = (
    ("conc", "concurrency", 5, ""),
    ("payload", "payload", 7, ""),
    ("variant", "variant", 11, ""),
    ("calls/s", "calls_per_s", 9, ".0f"),
    ("x raw", "ratio_to_raw", 6, ".3f"),
    ("+-", "ratio_spread", 5, ".3f"),
    ("p50 us", "p50_us", 8, ".0f"),
    ("p99 us", "p99_us", 8, ".0f"),
    ("cli cpu us", "client_cpu_us", 10, ".0f"),
    ("srv cpu us", "server_cpu_us", 10, ".0f"),
)


def report(data: dict[str, Any]) -> None:
    rounds, seconds = data["rounds"], data["seconds_per_run"]
    print(f"{data['machine']}, grpcio {data['grpcio']}: medians of {rounds} rounds of {seconds} s")
    print(" ".join(f"{title:>{width}}" for title, _, width, _ in COLUMNS))
    order = sorted(
        data["results"],
        key=lambda r: (r["concurrency"], r["payload"], VARIANTS.index(r["variant"])),
    )
    for row in order:
        print(" ".join(f"{row[key]:>{width}{fmt}}" for _, key, width, fmt in COLUMNS))
    streams = data["streams"]
    for kind, name in (("server", "server stream"), ("bidi", "bidi echo")):
        figures = streams[kind]
        print(
            f"{name} of {streams['messages']} messages: raw {figures['raw_ms']:.2f} ms, "
            f"CSF default chain {figures['default_ms']:.2f} ms, "
            f"{figures['default_over_raw']:.3f}x raw's rate (+-{figures['spread']:.3f})"
        )
    print(f"issue 14's goals on the {data['loop']} loop (figure, target):")
    for name, (figure, target) in data["goals"].items():
        print(f"  {name:28} {'-' if figure is None else figure:>8}  {target}")
    if not data["dubbo"]:
        print("no apache-dubbo figures: it runs on asyncio's loop, with the bench extra installed")
    for peer in data["dubbo"]:
        print(
            f"CSF default chain / apache-dubbo at concurrency {peer['concurrency']}, "
            f"{peer['payload']}: {peer['csf_default_over_dubbo']:.2f}x (+-{peer['spread']:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run, for CI and a first look")
    parser.add_argument("--rounds", type=int, help="rounds of every variant (default 5, quick 2)")
    parser.add_argument("--seconds", type=float, help="seconds a run (default 2, quick 0.5)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--out", type=Path, default=None, help=f"default {DEFAULT_OUT.name}")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from echo_server import loop_factory

    out = args.out or (DEFAULT_OUT if args.loop == "asyncio" else UVLOOP_OUT)
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        data = runner.run(measure(args.quick, args.rounds, args.seconds, args.loop))
    report(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
