"""How the registry scales: a provider change or a pushed rule reaching every consumer,
and the memory a consumer holds for many instances.

    python benchmarks/bench_registry.py [--quick] [--consumers 100] [--out FILE]

One real ZooKeeper on 127.0.0.1. Providers are simulated: one kazoo session holds their
ephemeral znodes. Each consumer is a real csf.Consumer with its own ZooKeeper session,
spread over worker processes as consumers are in production (100 kazoo sessions in one
Python process would measure their threads' contention for one GIL instead). The moment
a consumer sees a change is taken in its listener, not by polling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

import csf
from csf.registry import Instance
from csf.registry.paths import instance_path, rule_path
from csf.testing.zookeeper import LocalZooKeeper

DEFAULT_OUT = Path(__file__).parent / "results" / "bench_registry.json"
TENANT = "Bench"
SERVICE = "S0"
CLUSTER = "defaultCluster"
OFF = csf.Observability(tracing=False, metrics=False)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def plant(kazoo: KazooClient, service: str, port: int) -> str:
    instance = Instance(host="127.0.0.1", port=port, start_time=time.time(), warmup=0)
    path = instance_path(TENANT, service, CLUSTER, "normal", instance.address)
    kazoo.create(path, instance.to_json(), ephemeral=True, makepath=True)
    return instance.address


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "samples": len(ordered),
    }


async def worker(registry: str, count: int, work: Path) -> None:
    """Host `count` consumers; print each sighting as `seen KIND VALUE MONOTONIC`.

    CLOCK_MONOTONIC is one clock for every process here, so the parent can compare.
    """
    clients = [
        csf.Consumer(
            registry=registry,
            tenant=TENANT,
            app=f"c{i}",
            snapshot_dir=work / f"c{i}",
            observability=OFF,
        )
        for i in range(count)
    ]
    for client in clients:
        await client.start()
        directory, rules = client.directory(SERVICE), client.rules(SERVICE)
        known: set[str] = set()
        original = directory.on_providers

        def on_providers(instances: Any, original: Any = original, known: set[str] = known) -> None:
            original(instances)
            for instance in instances:
                # The first listing is the starting point, not a change.
                if known and instance.address not in known:
                    print(f"seen provider {instance.address} {time.monotonic()}", flush=True)
            known.update(instance.address for instance in instances)

        directory.on_providers = on_providers  # type: ignore[method-assign]

        def on_rule(rules: Any = rules) -> None:
            rule = rules.current.get("breaker")
            if rule is not None:
                print(f"seen rule {rule.min_calls} {time.monotonic()}", flush=True)

        rules.on_change("breaker", on_rule)
    for client in clients:
        await client.directory(SERVICE).wait_listed()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    for client in clients:
        await client.close()


async def convergence(
    zookeeper: LocalZooKeeper, work: Path, consumers: int, processes: int, changes: int
) -> dict[str, Any]:
    kazoo = KazooClient(hosts=zookeeper.hosts)
    await asyncio.to_thread(kazoo.start, 10)
    for port in range(20_000, 20_100):  # 100 providers to begin with
        await asyncio.to_thread(plant, kazoo, SERVICE, port)
    sightings: asyncio.Queue[tuple[str, str, float]] = asyncio.Queue()
    workers = []
    for index in range(processes):
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", str(consumers // processes),
            "--registry", zookeeper.url, "--work", str(work / f"w{index}"),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        assert line.strip() == b"ready", line
        workers.append(process)

    async def read(stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            _, kind, value, at = raw.decode().split()
            sightings.put_nowait((kind, value, float(at)))

    readers = [asyncio.ensure_future(read(w.stdout)) for w in workers if w.stdout is not None]
    total = (consumers // processes) * processes

    async def measure(kind: str, value: str, change: Any) -> list[float]:
        """Seconds until each consumer saw `change` (10 for one that never did)."""
        started = time.monotonic()
        await asyncio.to_thread(change)
        delays: list[float] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while len(delays) < total:
                    seen_kind, seen_value, at = await sightings.get()
                    if (seen_kind, seen_value) == (kind, value):
                        delays.append(at - started)
        return delays + [10.0] * (total - len(delays))

    provider_samples: list[float] = []
    for change in range(changes):
        address = f"127.0.0.1:{21_000 + change}"
        provider_samples += await measure(
            "provider", address, lambda c=change: plant(kazoo, SERVICE, 21_000 + c)
        )
    rule_samples: list[float] = []
    path = rule_path(TENANT, SERVICE, "breaker")
    await asyncio.to_thread(kazoo.create, path, b"", makepath=True)
    for change in range(changes):
        document = json.dumps({"schema": 1, "min_calls": 100 + change}).encode()
        rule_samples += await measure(
            "rule", str(100 + change), lambda d=document: kazoo.set(path, d)
        )
    for process in workers:
        assert process.stdin is not None
        process.stdin.close()
    await asyncio.gather(*(process.wait() for process in workers))
    for reader in readers:
        reader.cancel()
    await asyncio.to_thread(kazoo.stop)
    kazoo.close()
    return {
        "consumers": total,
        "processes": processes,
        "providers": 100,
        "changes": changes,
        "provider_change": percentiles(provider_samples),
        "rule_push": percentiles(rule_samples),
    }


async def memory(
    zookeeper: LocalZooKeeper, work: Path, services: int, per_service: int
) -> dict[str, Any]:
    kazoo = KazooClient(hosts=zookeeper.hosts)
    await asyncio.to_thread(kazoo.start, 10)
    for service in range(services):
        for port in range(per_service):
            await asyncio.to_thread(plant, kazoo, f"M{service}", 30_000 + port)
    tracemalloc.start()
    rss_before, python_before = rss_kib(), tracemalloc.get_traced_memory()[0]
    client = csf.Consumer(
        registry=zookeeper.url,
        tenant=TENANT,
        app="mem",
        snapshot_dir=work / "mem",
        observability=OFF,
    )
    await client.start()
    for service in range(services):
        client.directory(f"M{service}")
    for service in range(services):
        await client.directory(f"M{service}").wait_listed()
    held = sum(len(client.directory(f"M{s}").endpoints) for s in range(services))
    python_after, rss_after = tracemalloc.get_traced_memory()[0], rss_kib()
    tracemalloc.stop()
    await client.close()
    await asyncio.to_thread(kazoo.stop)
    kazoo.close()
    return {
        "services": services,
        "instances": held,
        "python_heap_kib": round((python_after - python_before) / 1024),
        "rss_kib": rss_after - rss_before,
        "python_heap_per_instance_kib": round(
            (python_after - python_before) / 1024 / max(1, held), 1
        ),
    }


async def run(consumers: int, processes: int, changes: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="csf-bench-") as work,
        LocalZooKeeper(Path(work) / "zk") as zookeeper,
    ):
        result = {
            "machine": f"{platform.node()} {platform.machine()}, Python {platform.python_version()}"
        }
        result["convergence"] = await convergence(
            zookeeper, Path(work), consumers, processes, changes
        )
        result["memory"] = await memory(zookeeper, Path(work), 50, 20)
        return result


def report(data: dict[str, Any]) -> None:
    convergence, memory = data["convergence"], data["memory"]
    consumers, providers = convergence["consumers"], convergence["providers"]
    processes = convergence["processes"]
    print(
        f"{data['machine']}: {consumers} consumers in {processes} processes, {providers} providers"
    )
    for name in ("provider_change", "rule_push"):
        f = convergence[name]
        print(
            f"  {name:16} reaches every consumer: p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms,"
            f" max {f['max_ms']} ms over {f['samples']} sightings"
        )
    print(
        f"  one consumer holding {memory['instances']} instances of {memory['services']}"
        f" services: Python heap +{memory['python_heap_kib']} KiB"
        f" ({memory['python_heap_per_instance_kib']} KiB an instance; gRPC channels' C memory"
        f" shows in RSS: +{memory['rss_kib']} KiB, which reuses pages freed before)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 consumers, 5 changes")
    parser.add_argument("--consumers", type=int, default=100)
    parser.add_argument("--processes", type=int, default=10, help="consumer processes")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--registry", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.registry, args.worker, args.work))
        return
    consumers, processes, changes = (
        (10, 2, 5) if args.quick else (args.consumers, args.processes, args.changes)
    )
    data = asyncio.run(run(consumers, processes, changes))
    report(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
