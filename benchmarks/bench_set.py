"""SET (cell) routing: shares, failure isolation, moves, and what the SET filter costs.

    python benchmarks/bench_set.py [--quick] [--out benchmarks/results/bench_set.json]

One real ZooKeeper and 3 SETs of 2 in-process providers each on 127.0.0.1 (hz.a.1 50%,
hz.a.2 30%, hz.b.1 20% of 1,000 buckets, hz.a.1 in two ranges). Figures:
- shares: where the calls of 10,000 random decimal keys landed, next to the table;
- isolation: every provider of hz.a.2 stopped, the calls failed per SET (on_empty fail);
- moves: a range moved back and forth between hz.a.2 and hz.b.1 while callers run, the
  time from the push (ZooKeeper acknowledging the write) to the rule reaching the
  consumer and to the last call started in the old SET (after it, every call of the
  range goes to the new SET), and failed calls;
- cost: calls/s of a service with a set rule and of one without (same providers, the
  key in metadata on both), in alternating rounds so drift on a shared machine hits both
  alike; the figure is the median round. Tracing and metrics are off to isolate the filter.
  The SET-ized calls also go to 2 providers, not 6, and carry csf-set-key on: this is
  what a SET-ized deployment costs, the filter among it;
- filter: the set filter alone, in microseconds per call, over a stand-in directory of
  two usable endpoints per SET (the key's bucket, the table, the pool, nothing else).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
from kazoo.client import KazooClient

import csf
from csf._invocation import Invocation, PickerRef, Selector
from csf.set_router import SetFilter
from csf.set_rule import SetName, SetRule
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from demo.sets import KEY, RULE, SETS

DEFAULT_OUT = Path(__file__).parent / "results" / "bench_set.json"
TENANT = "BenchSet"
SET_SERVICE, PLAIN_SERVICE = "SETSVC", "PLAINSVC"
MOVED = (300, 349)
OFF = csf.Observability(tracing=False, metrics=False)
Outcome = str | grpc.aio.AioRpcError


def provider_of(service: str) -> type[Greeter]:
    return csf.provider(service=service, version="1.0.0", warmup=0)(
        type(f"Greeter{service}", (Greeter,), {})
    )


class Bench:
    """The ZooKeeper writer, the providers, one consumer and its two stubs."""

    def __init__(self, zookeeper: LocalZooKeeper, work: Path) -> None:
        self.zookeeper = zookeeper
        self.work = work
        self.kazoo = KazooClient(hosts=zookeeper.hosts)
        self.servers: list[csf.Server] = []
        self.set_of: dict[str, str] = {}
        self.consumer = csf.Consumer(
            zookeeper.url, TENANT, "bench", snapshot_dir=work / "snapshots", observability=OFF
        )
        self.stubs: dict[str, Any] = {}

    async def push(self, document: dict[str, Any]) -> float:
        """Write the set rule as an operator would; when ZooKeeper acknowledged it."""
        path = f"/busidomain/csf/{TENANT}/{SET_SERVICE}/configs/set"
        data = json.dumps(document).encode()

        def write() -> float:
            self.kazoo.ensure_path(path)
            self.kazoo.set(path, data)
            return time.monotonic()  # in the writing thread: the loop's delays left out

        return await asyncio.to_thread(write)

    async def start(self) -> None:
        await asyncio.to_thread(self.kazoo.start, 10)
        await self.push(RULE)
        for set_name in SETS:
            for _ in range(2):
                server = csf.Server(
                    self.zookeeper.url,
                    TENANT,
                    deregister_wait=0,
                    grace=2.0,
                    handle_signals=False,
                    observability=OFF,
                    set=set_name,
                )
                for service in (SET_SERVICE, PLAIN_SERVICE):
                    server.add(provider_of(service)(lambda s=server: s.address))
                self.servers.append(server)
        await asyncio.gather(*(server.start() for server in self.servers))
        self.set_of = {s.address: str(s.set_name) for s in self.servers}
        await self.consumer.start()
        for service in (SET_SERVICE, PLAIN_SERVICE):
            self.stubs[service] = self.consumer.stub(
                greeter_pb2_grpc.GreeterStub, service=service, timeout=5.0
            )
            directory = self.consumer.directory(service)
            await until(lambda d=directory: len(d.endpoints) == len(self.servers))
        rules = self.consumer.rules(SET_SERVICE)
        await until(lambda: rules.get(SetRule) is not None)

    async def close(self) -> None:
        await self.consumer.close()
        await asyncio.gather(*(server.stop() for server in self.servers))
        await asyncio.to_thread(self.kazoo.stop)
        self.kazoo.close()

    async def call(self, key: str, service: str = SET_SERVICE) -> Outcome:
        try:
            reply = await self.stubs[service].SayHello(
                greeter_pb2.HelloRequest(name=key), metadata=((KEY, key),)
            )
        except grpc.aio.AioRpcError as exc:
            return exc
        return str(reply.served_by)

    async def call_all(self, keys: list[str], in_flight: int = 100) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for start in range(0, len(keys), in_flight):
            chunk = keys[start : start + in_flight]
            outcomes.extend(await asyncio.gather(*(self.call(k) for k in chunk)))
        return outcomes


async def until(condition: Any, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within} s: {condition}")
        await asyncio.sleep(0.02)


def rule_of(document: dict[str, Any]) -> SetRule:
    return SetRule.parse(json.dumps(document).encode())


async def shares(bench: Bench, count: int) -> dict[str, Any]:
    rule = rule_of(RULE)
    generator = random.Random(15)
    keys = [str(generator.getrandbits(63)) for _ in range(count)]
    outcomes = await bench.call_all(keys)
    landed = Counter(bench.set_of.get(str(o), "failed") for o in outcomes)
    misrouted = sum(
        1
        for k, o in zip(keys, outcomes, strict=True)
        if bench.set_of.get(str(o)) != str(rule.which(k)[1])
    )
    table: dict[str, float] = dict.fromkeys(SETS, 0.0)
    for r in rule.ranges:
        table[str(r.set)] += (r.last - r.first + 1) / rule.buckets
    return {
        "keys": count,
        "misrouted": misrouted,
        "per_set": {s: {"share": landed[s] / count, "table": table[s]} for s in SETS},
    }


async def isolation(bench: Bench, rounds: int) -> dict[str, Any]:
    """Runs last: it stops hz.a.2 for good."""
    rule = rule_of(RULE)
    keys = [str(k) for k in range(1000)]
    victim = "hz.a.2"
    await asyncio.gather(*(s.stop() for s in bench.servers if s.set_name == victim))
    directory = bench.consumer.directory(SET_SERVICE)
    await until(lambda: len(directory.endpoints) == len(bench.servers) - 2)
    failed: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    named = 0
    for _ in range(rounds):
        for key, outcome in zip(keys, await bench.call_all(keys), strict=True):
            bucket, owner = rule.which(key)
            calls[str(owner)] += 1
            if not isinstance(outcome, str):
                failed[str(owner)] += 1
                named += f"SET {owner} (bucket {bucket})" in (outcome.details() or "")
    return {
        "down": victim,
        "calls_per_set": dict(calls),
        "failed_per_set": {s: failed[s] for s in SETS},
        "errors_naming_set_and_bucket": named,
    }


async def moves(bench: Bench, count: int, workers: int = 16) -> dict[str, Any]:
    """Moves MOVED back and forth between hz.a.2 and hz.b.1 under a steady load."""
    base = rule_of(RULE)
    moved = {str(k) for k in range(MOVED[0], MOVED[1] + 1)}
    keys = sorted(moved) + [str(k) for k in range(0, 1000, 9) if not MOVED[0] <= k <= MOVED[1]]
    rules = bench.consumer.rules(SET_SERVICE)
    seen: list[float] = []
    stop_listening = rules.on_change("set", lambda: seen.append(time.monotonic()))
    results: list[dict[str, Any]] = []
    try:
        for _ in range(count):
            before = rules.get(SetRule)
            assert before is not None
            old = before.set_of_bucket(MOVED[0])
            new = SetName.parse("set", "hz.b.1" if str(old) == "hz.a.2" else "hz.a.2")
            after = before.moved(*MOVED, new)
            seen.clear()
            calls, pushed = await under_load(bench, after, keys, workers)
            await until(lambda a=after: rules.get(SetRule) == a)
            last_old = max(
                (s for k, s, o in calls if k in moved and bench.set_of.get(str(o)) == str(old)),
                default=pushed,
            )
            results.append(
                {
                    "move": f"{MOVED[0]}..{MOVED[1]} {old} -> {new}",
                    "calls": len(calls),
                    "failed": sum(1 for c in calls if not isinstance(c[2], str)),
                    "rule_seen_ms": (seen[0] - pushed) * 1000 if seen else None,
                    "last_old_call_ms": max(0.0, last_old - pushed) * 1000,
                }
            )
    finally:
        stop_listening()
        await bench.push(base.to_document())
        await until(lambda: rules.get(SetRule) == base)
    applied = sorted(r["last_old_call_ms"] for r in results)
    return {
        "moves": results,
        "applied_ms_p50": statistics.median(applied),
        "applied_ms_max": applied[-1],
        "failed": sum(r["failed"] for r in results),
    }


async def under_load(
    bench: Bench, after: SetRule, keys: list[str], workers: int
) -> tuple[list[tuple[str, float, Outcome]], float]:
    """Push `after` while `workers` callers cycle through `keys`, until 1.5 s after the
    push: every call (key, when it started, outcome), and when ZooKeeper acknowledged
    the push."""
    calls: list[tuple[str, float, Outcome]] = []
    pushed: list[float] = []

    async def worker(mine: list[str]) -> None:
        while not pushed or time.monotonic() < pushed[0] + 1.5:
            for key in mine:
                start = time.monotonic()
                calls.append((key, start, await bench.call(key)))

    running = [asyncio.create_task(worker(keys[i::workers])) for i in range(workers)]
    await until(lambda: len(calls) > 2 * len(keys))
    pushed.append(time.monotonic())
    acked = await bench.push(after.to_document())
    await asyncio.gather(*running)
    return calls, acked


async def cost(bench: Bench, rounds: int, calls: int) -> dict[str, Any]:
    """Calls/s of the SET-ized service and of the plain one, alternating rounds."""
    keys = [str(k) for k in range(calls)]
    figures: dict[str, dict[int, list[float]]] = {}
    for _ in range(rounds):
        for service in (PLAIN_SERVICE, SET_SERVICE):
            for in_flight in (1, 32):
                start = time.perf_counter()
                for first in range(0, calls, in_flight):
                    chunk = keys[first : first + in_flight]
                    await asyncio.gather(*(bench.call(k, service) for k in chunk))
                rate = calls / (time.perf_counter() - start)
                figures.setdefault(service, {}).setdefault(in_flight, []).append(rate)
    return {
        label: {str(n): round(statistics.median(figures[service][n]), 1) for n in (1, 32)}
        for label, service in (("without_set_rule", PLAIN_SERVICE), ("with_set_rule", SET_SERVICE))
    }


class _StandInRules:
    def __init__(self, rule: SetRule) -> None:
        self.rule, self.generation = rule, 1

    def get(self, kind: type) -> SetRule:
        return self.rule


class _StandInDirectory:
    listed, key = True, "bench"

    def pool(self, factory: Any, selector: Selector) -> PickerRef:
        ref = PickerRef(selector)
        ref.picker = SimpleNamespace(endpoints=[SimpleNamespace(usable=True)] * 2)  # type: ignore[assignment]
        return ref


async def filter_cost(calls: int) -> float:
    """Microseconds the set filter adds to a call, over a bare `next`."""
    ctx = SimpleNamespace(
        directory=_StandInDirectory(), balancer=None, selector=Selector(), home_set=None,
        kind="unary_unary", set_key=None, rules=_StandInRules(rule_of(RULE)), service="S",
    )  # fmt: skip
    set_filter = SetFilter(ctx)  # type: ignore[arg-type]
    invocations = [
        Invocation("S", "/b.S/M", None, ((KEY, str(i % 5_000)),), 0.0) for i in range(calls)
    ]

    async def bare(inv: Invocation) -> None:
        return None

    start = time.perf_counter()
    for inv in invocations:
        await bare(inv)
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    for inv in invocations:
        await set_filter(inv, bare)
    return round((time.perf_counter() - start - baseline) / calls * 1e6, 2)


async def measure(quick: bool) -> dict[str, Any]:
    machine = f"{platform.node()} {platform.machine()} {platform.python_version()}"
    with (
        tempfile.TemporaryDirectory(prefix="bench-set-") as work,
        LocalZooKeeper(Path(work) / "zk") as zookeeper,
    ):
        bench = Bench(zookeeper, Path(work))
        await bench.start()
        try:
            return {
                "machine": machine,
                "shares": await shares(bench, 10_000),
                "cost": await cost(bench, 3 if quick else 7, 300 if quick else 2_000),
                "moves": await moves(bench, 3 if quick else 8),
                "isolation": await isolation(bench, 2 if quick else 5),
                "filter_us": await filter_cost(20_000 if quick else 200_000),
            }
        finally:
            await bench.close()


def report(data: dict[str, Any]) -> None:
    shares = data["shares"]
    print(f"shares of {shares['keys']} random decimal keys ({shares['misrouted']} misrouted):")
    for set_name, row in shares["per_set"].items():
        print(f"  {set_name:<8} {row['share']:7.2%}  table {row['table']:6.1%}")
    isolation = data["isolation"]
    print(f"isolation: every provider of {isolation['down']} down, on_empty fail:")
    for set_name, failed in isolation["failed_per_set"].items():
        print(
            f"  {set_name:<8} {failed:>6} of {isolation['calls_per_set'][set_name]:>6} calls failed"
        )
    print(f"  errors naming the SET and the bucket: {isolation['errors_naming_set_and_bucket']}")
    moves = data["moves"]
    print("moves under load (from the push):")
    for move in moves["moves"]:
        print(
            f"  {move['move']}: rule at the consumer {move['rule_seen_ms']:.0f} ms, last call "
            f"in the old SET {move['last_old_call_ms']:.0f} ms; {move['failed']} of "
            f"{move['calls']} calls failed"
        )
    print(
        f"  applied p50 {moves['applied_ms_p50']:.0f} ms, max {moves['applied_ms_max']:.0f} ms;"
        f" failed calls {moves['failed']}"
    )
    cost = data["cost"]
    print("calls/s (median round), without -> with a set rule:")
    for in_flight in ("1", "32"):
        without, with_ = cost["without_set_rule"][in_flight], cost["with_set_rule"][in_flight]
        change = with_ / without - 1
        print(f"  {in_flight:>2} in flight: {without:8.0f} -> {with_:8.0f} ({change:+.1%})")
    print(f"the set filter alone: {data['filter_us']:.2f} us per call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, moves and calls")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    data = asyncio.run(measure(args.quick))
    report(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
