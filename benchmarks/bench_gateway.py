"""What the gateway costs: SayHello three ways at 64 concurrent connections, side by side.

    python benchmarks/bench_gateway.py [--quick] [--rounds N] [--seconds S] [--out FILE]

(a) bare: a Starlette app on uvicorn (the gateway's stack, with the uvicorn settings
    csf-gateway uses, one process) answering every POST with fixed JSON
(b) direct: a client process of a csf.Consumer and the demo stub, 64 tasks calling
    SayHello, no HTTP at all
(c) gateway: a real csf-gateway process in front of the same provider, answering signed
    POSTs of /XIESR/demo.Greeter/SayHello

One ZooKeeper of its own, one demo provider process (`python -m demo provider`, XIESR
imported, opened and subscribed as csf-registry does), everything on 127.0.0.1. (a) and
(c) are driven by wrk (-t2 -c64) through a Lua script that sends requests signed before
each round, each nonce once (the gateway refuses replays); any status over 399 or socket
error fails the round. The variants alternate within every round, in a rotating order,
so drift on a shared machine hits all alike; the goal's ratio is taken within each round,
and figures are medians over rounds. CPU per request is the user + system time of the
serving processes (gateway + provider; uvicorn; client + provider) over the round,
divided by its requests: wrk's own CPU is not counted. p50/p99 of (a) and (c) are
wrk's, of (b) the client's own clock.

The gateway's nonce cache holds 100,000 live nonces (5 minutes each): a run sending more
than that through the gateway within 5 minutes gets 503s, and fails.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import secrets
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import starlette
import uvicorn
from bench_overhead import cpu_seconds, run_load
from echo_server import loop_factory
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csf.config import ZooKeeperURL, parse_registry_url
from csf.gateway import signed_headers
from csf.gateway.cli import SERVER_OPTIONS
from csf.registry.admin import RegistryAdmin
from csf.registry.descriptors import export, parse
from csf.testing.zookeeper import LocalZooKeeper, free_port

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).parent / "results" / "gateway.json"
TENANT, SERVICE, APP = "BenchGateway", "XIESR", "bench"
SECRET = secrets.token_urlsafe(24)
PATH = f"/{SERVICE}/demo.Greeter/SayHello"
NAME = "x" * 16
BODY = json.dumps({"name": NAME}, separators=(",", ":")).encode()
FIXED_REPLY = json.dumps({"message": f"hi {NAME}", "servedBy": "bare"}).encode()
VARIANTS = ("bare", "direct", "gateway")
CONNECTIONS, THREADS = 64, 2
GUESS = 5000.0  # calls/s of the gateway, before the warm-up measured it
# uvicorn's loop="auto" (what csf-gateway gets) takes uvloop when it is installed: the
# direct client runs on the same loop, so (b) and (c) differ by the HTTP layer only.
LOOP = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"

# Thread i of wrk sends the lines of <prefix>.<i> (timestamp nonce signature), each once;
# past the end it starts over, and the gateway's 401s for the replays fail the round.
WRK_SCRIPT = r"""
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  local path, body = args[2], args[3]
  signed = {}
  for line in io.lines(args[1] .. "." .. id) do
    local timestamp, nonce, signature = line:match("(%S+) (%S+) (%S+)")
    signed[#signed + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/json",
      ["X-Csf-App"] = args[4],
      ["X-Csf-Timestamp"] = timestamp,
      ["X-Csf-Nonce"] = nonce,
      ["X-Csf-Signature"] = signature,
    }, body)
  end
  index = 0
end

function request()
  index = index % #signed + 1
  return signed[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50.0), latency:percentile(99.0)))
end
"""


# -- the processes the benchmark starts ----------------------------------------------------


def serve_bare(port: int) -> None:
    """(a): fixed JSON for any POST, served as csf-gateway serves (uvicorn.run, one process)."""

    async def answer(request: Request) -> Response:
        await request.body()
        return Response(FIXED_REPLY, 200, media_type="application/json")

    app = Starlette(routes=[Route("/{path:path}", answer, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **SERVER_OPTIONS)


async def run_client(registry: str, work: Path) -> None:
    """(b): prints 'ready', then for every line of stdin (seconds) runs CONNECTIONS
    callers of SayHello for that long and prints their figures as one JSON line."""
    import csf
    from demo import greeter_pb2_grpc

    consumer = csf.Consumer(registry=registry, tenant=TENANT, app=APP, snapshot_dir=work)
    async with consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service=SERVICE, timeout=10)
        await consumer.directory(SERVICE).wait_listed()
        print("ready", flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            result = await run_load(stub.SayHello, len(NAME), CONNECTIONS, float(line))
            print(json.dumps(result), flush=True)


class Processes:
    """Every process the benchmark starts, stopped together (a clean stop, then a kill).
    Their stderr (and stdout, unless piped) goes to <work>/<name>.log."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.started: dict[str, subprocess.Popen[str]] = {}
        # demo/ is not installed: the root comes first, as scripts/bench.sh sets it.
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "PYTHONPATH": path}

    def start(
        self, name: str, command: list[str], *, stdout: bool = False, stdin: bool = False
    ) -> subprocess.Popen[str]:
        with (self.work / f"{name}.log").open("w") as log:
            process = subprocess.Popen(
                [sys.executable, *command],
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout else log,
                stderr=log, text=True, cwd=ROOT, env=self.env,
            )  # fmt: skip
        self.started[name] = process
        return process

    def line(self, name: str, within: float = 60.0) -> str:
        """The next line `name` prints; SystemExit when it exits or is silent `within` s."""
        stdout = self.started[name].stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], within)
        line = stdout.readline().strip() if ready else ""
        if not line:
            raise SystemExit(f"{name} printed nothing within {within} s: {self.log(name)}")
        return line

    def log(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text()[-2000:]

    def stop(self) -> None:
        for process in self.started.values():
            if process.stdin is not None:
                process.stdin.close()  # the client stops when its input ends
            process.terminate()
        for process in self.started.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def open_service(registry: str) -> None:
    """What an operator does with csf-registry: import, online, open, subscribe."""
    url = parse_registry_url(registry)
    assert isinstance(url, ZooKeeperURL)
    with RegistryAdmin(url, TENANT) as admin:
        admin.import_descriptors(parse(export(["demo.providers:Greeter"])))
        admin.transition(SERVICE, "online")
        admin.transition(SERVICE, "open")
        admin.subscribe(APP, SERVICE)


def post(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, BODY, {"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status), bytes(reply.read())
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def signed() -> dict[str, str]:
    return signed_headers(APP, SECRET, "POST", PATH, BODY)


def until(ready: Any, what: str, process: subprocess.Popen[str], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not ready():
        if process.poll() is not None:
            raise SystemExit(f"{what}: the process exited ({process.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {within} s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        status, _ = post(url, {})
    except OSError:
        return False
    return status == 200


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as reply:
            return SERVICE in json.loads(reply.read()).get("open_services", [])
    except (OSError, ValueError):
        return False


# -- one round's runs ------------------------------------------------------------------------


def write_requests(prefix: Path, per_thread: int) -> None:
    """Signed now, after the gateway started: each thread's file of unique nonces."""
    for thread in range(1, THREADS + 1):
        lines = []
        for _ in range(per_thread):
            headers = signed()
            lines.append(f"{headers['X-Csf-Timestamp']} {headers['X-Csf-Nonce']} "
                         f"{headers['X-Csf-Signature']}\n")  # fmt: skip
        Path(f"{prefix}.{thread}").write_text("".join(lines))


def run_wrk(url: str, script: Path, prefix: Path, seconds: int) -> dict[str, Any]:
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s",
               "--latency", "-s", str(script), url + PATH, "--", str(prefix), PATH,
               BODY.decode(), APP]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    figures: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH "))
    return {
        "calls": figures["requests"],
        "errors": figures["status_errors"] + figures["socket_errors"],
        "calls_per_s": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50_us": figures["p50_us"],
        "p99_us": figures["p99_us"],
    }


class Bench:
    """The three variants' servers, and how to drive each for one run."""

    def __init__(self, processes: Processes, registry: str) -> None:
        self.processes = processes
        self.registry = registry
        work = processes.work
        self.script = work / "signed.lua"
        self.script.write_text(WRK_SCRIPT)
        self.requests = work / "requests"
        self.urls: dict[str, str] = {}
        self.pids: dict[str, list[int]] = {}
        self.gateway_rate: float | None = None  # the fastest gateway run's calls/s

    def start(self) -> None:
        started = self.processes
        provider = started.start(
            "provider",
            ["-m", "demo", "provider", "--registry", self.registry, "--tenant", TENANT],
            stdout=True,
        )
        if not started.line("provider").startswith("serving "):
            raise SystemExit(f"provider did not start: {started.log('provider')}")
        open_service(self.registry)
        apps = started.work / "apps.json"
        apps.write_text(json.dumps({APP: SECRET}))
        gateway_port, bare_port = free_port(), free_port()
        gateway = started.start("gateway", [
            "-m", "csf.gateway.cli", "--registry", self.registry, "--tenant", TENANT,
            "--apps", str(apps), "--port", str(gateway_port), "--log-level", "warning",
        ])  # fmt: skip
        bare = started.start("bare", [__file__, "bare", "--port", str(bare_port)])
        client = started.start(
            "direct",
            [__file__, "client", "--registry", self.registry, "--work", str(started.work)],
            stdout=True,
            stdin=True,
        )
        self.urls = {"gateway": f"http://127.0.0.1:{gateway_port}",
                     "bare": f"http://127.0.0.1:{bare_port}"}  # fmt: skip
        until(lambda: healthy(self.urls["gateway"]), "csf-gateway serving XIESR", gateway)
        until(lambda: answers(self.urls["bare"] + PATH), "the bare endpoint", bare)
        if started.line("direct") != "ready":
            raise SystemExit(f"the direct client did not start: {started.log('direct')}")
        self.pids = {"bare": [bare.pid], "direct": [client.pid, provider.pid],
                     "gateway": [gateway.pid, provider.pid]}  # fmt: skip
        self.check_replies()

    def check_replies(self) -> None:
        """A signed call through the gateway reaches the provider; the bare one answers."""
        status, body = post(self.urls["gateway"] + PATH, signed())
        reply = json.loads(body)
        if status != 200 or reply.get("message") != f"hi {NAME}" or not reply.get("servedBy"):
            raise SystemExit(f"the gateway answered {status}: {body[:200]!r}")
        status, body = post(self.urls["gateway"] + PATH, {})
        if status != 401:
            raise SystemExit(f"an unsigned call got {status}, not 401: {body[:200]!r}")
        status, body = post(self.urls["bare"] + PATH, {})
        if status != 200 or body != FIXED_REPLY:
            raise SystemExit(f"the bare endpoint answered {status}: {body[:200]!r}")

    def sign_round(self, seconds: int) -> None:
        """Enough fresh requests that each wrk thread alone could run twice as fast as
        the fastest gateway run so far (before any, GUESS) and not reach its file's end."""
        write_requests(self.requests, int(2 * (self.gateway_rate or GUESS) * seconds))

    def run_client(self, seconds: int) -> dict[str, Any]:
        stdin = self.processes.started["direct"].stdin
        assert stdin is not None
        stdin.write(f"{seconds}\n")
        stdin.flush()
        result: dict[str, Any] = json.loads(self.processes.line("direct", seconds + 60))
        return result

    def run(self, variant: str, seconds: int) -> dict[str, Any]:
        pids = self.pids[variant]
        before = sum(cpu_seconds(pid) for pid in pids)
        if variant == "direct":
            result = self.run_client(seconds)
        else:
            result = run_wrk(self.urls[variant], self.script, self.requests, seconds)
        used = sum(cpu_seconds(pid) for pid in pids) - before
        result["cpu_us"] = used / max(1, result["calls"]) * 1e6
        if variant == "gateway":
            self.gateway_rate = max(self.gateway_rate or 0.0, result["calls_per_s"])
        if result["errors"]:
            raise SystemExit(
                f"{variant}: {result['errors']} of {result['calls']} calls failed"
                " (a status over 399, a socket error or a timeout)"
            )
        return result


def measure(rounds: int, seconds: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="csf-bench-gateway-") as work,
        LocalZooKeeper(Path(work) / "zk") as zookeeper,
    ):
        processes = Processes(Path(work))
        try:
            bench = Bench(processes, zookeeper.url)
            bench.start()
            bench.sign_round(1)
            for variant in VARIANTS:  # warm every path up
                bench.run(variant, 1)
            samples: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
            for number in range(rounds):
                bench.sign_round(seconds)
                order = VARIANTS[number % 3 :] + VARIANTS[: number % 3]
                for variant in order:
                    samples[variant].append(bench.run(variant, seconds))
                print_round(number + 1, {variant: samples[variant][-1] for variant in VARIANTS})
        finally:
            processes.stop()
    return summarize(samples, rounds, seconds)


# -- figures ---------------------------------------------------------------------------------


def summarize(
    samples: dict[str, list[dict[str, Any]]], rounds: int, seconds: int
) -> dict[str, Any]:
    rows = []
    for variant, runs in samples.items():
        row: dict[str, Any] = {"variant": variant}
        for key in ("calls_per_s", "p50_us", "p99_us", "cpu_us"):
            row[key] = round(statistics.median(run[key] for run in runs), 1)
        rows.append(row)
    per_round = list(zip(*(samples[v] for v in VARIANTS), strict=True))
    ratios = [g["calls_per_s"] / min(a["calls_per_s"], d["calls_per_s"]) for a, d, g in per_round]
    both = [a["cpu_us"] + d["cpu_us"] for a, d, _ in per_round]
    median = {row["variant"]: row for row in rows}
    machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} cores"
    return {
        "machine": f"{machine}, Python {platform.python_version()}",
        "stack": f"uvicorn {uvicorn.__version__}, starlette {starlette.__version__}, loop {LOOP}",
        "connections": CONNECTIONS,
        "rounds": rounds,
        "seconds_per_run": seconds,
        "results": rows,
        "samples": samples,
        "goals": {
            "gateway_over_lower_c64": (round(statistics.median(ratios), 3), ">= 0.6"),
            "gateway_over_lower_spread": (round(max(ratios) - min(ratios), 3), "-"),
            "gateway_cpu_us_per_call": (
                median["gateway"]["cpu_us"],
                f"beside bare + direct: {statistics.median(both):.1f}",
            ),
        },
    }


def print_round(number: int, runs: dict[str, dict[str, Any]]) -> None:
    lower = min(runs["bare"]["calls_per_s"], runs["direct"]["calls_per_s"])
    figures = "  ".join(
        f"{variant} {run['calls_per_s']:.0f}/s p50 {run['p50_us'] / 1e3:.1f} "
        f"p99 {run['p99_us'] / 1e3:.1f} ms cpu {run['cpu_us']:.0f} us"
        for variant, run in runs.items()
    )
    print(f"round {number}: {figures}  gateway/lower {runs['gateway']['calls_per_s'] / lower:.3f}",
          flush=True)  # fmt: skip


def report(data: dict[str, Any]) -> None:
    print(f"{data['machine']}; {data['stack']}: medians of {data['rounds']} rounds of "
          f"{data['seconds_per_run']} s at {data['connections']} connections")  # fmt: skip
    print(f"{'variant':>8} {'calls/s':>9} {'p50 us':>8} {'p99 us':>8} {'cpu us/call':>11}")
    for row in data["results"]:
        print(f"{row['variant']:>8} {row['calls_per_s']:>9.0f} {row['p50_us']:>8.0f} "
              f"{row['p99_us']:>8.0f} {row['cpu_us']:>11.1f}")  # fmt: skip
    print("issue 16's goals (figure, target):")
    for name, (figure, target) in data["goals"].items():
        print(f"  {name:28} {figure:>8}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run, for CI and a first look")
    parser.add_argument("--rounds", type=int, help="rounds of every variant (default 5, quick 2)")
    parser.add_argument("--seconds", type=int, help="whole seconds a run (default 5, quick 2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT.name}")
    roles = parser.add_subparsers(dest="role", help="the processes the benchmark starts")
    bare = roles.add_parser("bare", help="(a): the bare endpoint")
    bare.add_argument("--port", type=int, required=True)
    client = roles.add_parser("client", help="(b): the direct CSF client")
    client.add_argument("--registry", required=True)
    client.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    if args.role is None and shutil.which("wrk") is None:
        raise SystemExit("bench_gateway needs wrk, the HTTP load generator (apt-get install wrk)")
    if args.role == "bare":
        serve_bare(args.port)
        return
    if args.role == "client":
        with asyncio.Runner(loop_factory=loop_factory(LOOP)) as runner:
            runner.run(run_client(args.registry, args.work / "snapshots"))
        return
    rounds = args.rounds or (2 if args.quick else 5)
    seconds = args.seconds or (2 if args.quick else 5)
    data = measure(rounds, seconds)
    report(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
