"""How the registry scales: a provider change or a pushed rule reaching every consumer,
every consumer re-listing after ZooKeeper restarts, and the memory a consumer holds for
many instances.

    python benchmarks/bench_registry.py [--quick] [--consumers 1000] [--processes 20]
                                        [--providers 200] [--changes 10] [--out FILE]

One real ZooKeeper on 127.0.0.1. Providers are simulated: one kazoo session holds their
ephemeral znodes. Each consumer is a real csf.Consumer with its own ZooKeeper session,
spread over worker processes as consumers are in production (1,000 kazoo sessions in one
Python process would measure their threads' contention for one GIL instead). The moment
a consumer sees a change is taken in its listener, not by polling.

The restart: ZooKeeper is stopped and started again on the same port and data, well
within the session timeout, so every session survives (a restarted ZooKeeper gives the
sessions it reloads a fresh timeout). kazoo sends no SetWatches, so every watch is gone
and every consumer re-reads all it follows. Right after the restart one provider is
replaced, so a consumer holds the correct list only once it has re-listed. This runs twice,
with the re-list jitter (csf.registry.zookeeper.RELIST_JITTER) off and on, while ZooKeeper's
`mntr` counters are sampled every 100 ms for the request rate it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import sys
import tempfile
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError
from kazoo.protocol.serialization import Watch, int_struct, write_string

import csf
from csf.registry import Instance
from csf.registry import zookeeper as csf_zookeeper
from csf.registry.paths import cluster_path, instance_path, rule_path
from csf.testing.zookeeper import LocalZooKeeper, four_letter_word

DEFAULT_OUT = Path(__file__).parent / "results" / "bench_registry.json"
TENANT = "Bench"
SERVICE = "S0"
CLUSTER = "defaultCluster"
OFF = csf.Observability(tracing=False, metrics=False)
RESTART_DEADLINE = 60.0  # seconds for every consumer to converge after a restart


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def plant(kazoo: KazooClient, service: str, port: int, ephemeral: bool = True) -> str:
    instance = Instance(host="127.0.0.1", port=port, start_time=time.time(), warmup=0)
    path = instance_path(TENANT, service, CLUSTER, "normal", instance.address)
    kazoo.create(path, instance.to_json(), ephemeral=ephemeral, makepath=True)
    return instance.address


def unplant(kazoo: KazooClient, service: str, port: int) -> None:
    kazoo.delete(instance_path(TENANT, service, CLUSTER, "normal", f"127.0.0.1:{port}"))


def change_provider(kazoo: KazooClient, port: int, present: bool) -> None:
    """Add or remove one provider, through connection losses (a loaded machine has them)."""

    def once() -> None:
        with contextlib.suppress(NodeExistsError, NoNodeError):  # a retry after it worked
            if present:
                plant(kazoo, SERVICE, port, False)
            else:
                unplant(kazoo, SERVICE, port)

    kazoo.retry(once)


def digest(addresses: Iterable[str]) -> str:
    """A short name for one provider list, the same in every process."""
    return f"{zlib.crc32(','.join(sorted(addresses)).encode()):08x}"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "samples": len(ordered),
    }


async def worker(registry: str, count: int, work: Path) -> None:
    """Host `count` consumers; print each sighting as `seen|gone KIND VALUE MONOTONIC`,
    and, once told `jitter SECONDS` on stdin, each list delivered as
    `list CONSUMER DIGEST NEW_SESSION MONOTONIC` (NEW_SESSION 1 once its session expired).

    CLOCK_MONOTONIC is one clock for every process here, so the parent can compare.
    """
    reporting = False
    sessions: dict[str, Any] = {}  # consumer -> (its registry, its session when told)
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
    for number, client in enumerate(clients):
        await client.start()
        directory, rules = client.directory(SERVICE), client.rules(SERVICE)
        known: set[str] = set()
        original = directory.on_providers
        name = f"{work.name}.{number}"
        sessions[name] = (client._registry, None)  # a benchmark may look inside

        def on_providers(
            instances: Any, original: Any = original, known: set[str] = known, name: str = name
        ) -> None:
            original(instances)
            now = time.monotonic()
            addresses = {instance.address for instance in instances}
            if known:  # the first listing is the starting point, not a change
                for address in addresses - known:
                    print(f"seen provider {address} {now}", flush=True)
                for address in known - addresses:
                    print(f"gone provider {address} {now}", flush=True)
            if reporting:
                registry, session = sessions[name]
                renewed = int(registry.session_id != session)
                print(f"list {name} {digest(addresses)} {renewed} {now}", flush=True)
            known.clear()
            known.update(addresses)

        directory.on_providers = on_providers  # type: ignore[method-assign]

        def on_rule(rules: Any = rules) -> None:
            rule = rules.current.get("breaker")
            if rule is not None:
                print(f"seen rule {rule.min_calls} {time.monotonic()}", flush=True)

        rules.on_change("breaker", on_rule)
    for client in clients:
        await client.directory(SERVICE).wait_listed()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):  # until closed
        _, seconds = line.split()
        csf_zookeeper.RELIST_JITTER = float(seconds)
        for name, (registry, _) in sessions.items():
            sessions[name] = (registry, registry.session_id)
        reporting = True
        print("ack", flush=True)
    for client in clients:
        await client.close()


class Mntr:
    """ZooKeeper's `mntr` counters, sampled every `every` seconds on a thread."""

    def __init__(self, port: int, every: float = 0.1) -> None:
        self.port, self.every = port, every
        self.samples: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Mntr:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append((time.monotonic(), mntr(self.port, timeout=0.5)))

    def peak_rate(self, counter: str) -> float:
        """The highest rate `counter` grew at between two samples (a restart resets it)."""
        rates, last = [0.0], None
        for at, values in self.samples:
            if counter not in values:
                continue
            value = int(values[counter])
            if last is not None and value >= last[1]:
                rates.append((value - last[1]) / (at - last[0]))
            last = (at, value)
        return max(rates)

    def peak(self, gauge: str) -> int:
        return max((int(v[gauge]) for _, v in self.samples if gauge in v), default=0)

    def last(self, counter: str) -> int:
        return next((int(v[counter]) for _, v in reversed(self.samples) if counter in v), 0)


def mntr(port: int, timeout: float = 1.0) -> dict[str, str]:
    lines = four_letter_word(port, "mntr", timeout).splitlines()
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


class Workers:
    """The consumer processes, and their reports sorted into queues by kind."""

    def __init__(self) -> None:
        self.processes: list[asyncio.subprocess.Process] = []
        self.sightings: asyncio.Queue[tuple[str, str, float]] = asyncio.Queue()
        self.lists: asyncio.Queue[tuple[str, str, bool, float]] = asyncio.Queue()
        self.acks: asyncio.Queue[None] = asyncio.Queue()
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, count: int, each: int, registry: str, work: Path) -> None:
        for index in range(count):
            process = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--worker", str(each),
                "--registry", registry, "--work", str(work / f"w{index}"),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            self.processes.append(process)
            # One process at a time: 1,000 sessions starting at once starve each other's
            # pings on a small machine, and their sessions expire before the first listing.
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 300)
            assert line.strip() == b"ready", line
            self._readers.append(asyncio.create_task(self._read(process.stdout)))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            words = raw.decode().split()
            if words[0] == "ack":
                self.acks.put_nowait(None)
            elif words[0] == "list":
                self.lists.put_nowait((words[1], words[2], words[3] == "1", float(words[4])))
            else:
                self.sightings.put_nowait((f"{words[0]} {words[1]}", words[2], float(words[3])))

    async def tell_jitter(self, seconds: float) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(f"jitter {seconds}\n".encode())
            await process.stdin.drain()
        for _ in self.processes:
            await asyncio.wait_for(self.acks.get(), 60)

    async def stop(self) -> None:
        for process in self.processes:
            if process.stdin is not None and not process.stdin.is_closing():
                process.stdin.close()
        try:
            async with asyncio.timeout(60):
                await asyncio.gather(*(process.wait() for process in self.processes))
        except TimeoutError:
            for process in self.processes:
                if process.returncode is None:
                    process.kill()
            await asyncio.gather(*(process.wait() for process in self.processes))
        for reader in self._readers:
            reader.cancel()


async def convergence(
    zookeeper: LocalZooKeeper,
    work: Path,
    consumers: int,
    processes: int,
    providers: int,
    changes: int,
) -> dict[str, Any]:
    workers = Workers()
    try:
        async with connected(zookeeper) as kazoo:
            ports = set(range(20_000, 20_000 + providers))
            for port in sorted(ports):
                # Persistent: the providers' session is not what a restart puts to the test.
                await asyncio.to_thread(plant, kazoo, SERVICE, port, False)
            each = consumers // processes
            await workers.start(processes, each, zookeeper.url, work)
            total = each * processes
            figures = await changes_reach_everyone(kazoo, workers, total, changes)
            print(f"changes: {json.dumps(figures)}", file=sys.stderr, flush=True)
            steady = mntr(zookeeper.port)
        restarts = {}
        for label, jitter in (("jitter_off", 0.0), ("jitter_on", csf_zookeeper.RELIST_JITTER)):
            restarts[label] = await restart_storm(zookeeper, workers, total, ports, jitter)
            print(f"restart {label}: {json.dumps(restarts[label])}", file=sys.stderr, flush=True)
    finally:
        await workers.stop()
    return {
        "consumers": total,
        "processes": processes,
        "providers": providers,
        "changes": changes,
        **figures,
        "watches": {
            "zk_watch_count": int(steady.get("zk_watch_count", 0)),
            "per_consumer": round(int(steady.get("zk_watch_count", 0)) / total, 1),
            "connections": int(steady.get("zk_num_alive_connections", 0)),
        },
        "restart": restarts,
    }


@contextlib.asynccontextmanager
async def connected(zk: LocalZooKeeper) -> AsyncIterator[KazooClient]:
    kazoo = KazooClient(hosts=zk.hosts)
    await asyncio.to_thread(kazoo.start, 10)
    try:
        yield kazoo
    finally:
        await asyncio.to_thread(kazoo.stop)
        kazoo.close()


async def changes_reach_everyone(
    kazoo: KazooClient, workers: Workers, total: int, changes: int
) -> dict[str, Any]:
    async def measure(kind: str, value: str, change: Any) -> list[float]:
        """Seconds until each consumer saw `change` (10 for one that never did)."""
        started = time.monotonic()
        await asyncio.to_thread(change)
        delays: list[float] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while len(delays) < total:
                    seen_kind, seen_value, at = await workers.sightings.get()
                    if (seen_kind, seen_value) == (kind, value):
                        delays.append(at - started)
        return delays + [10.0] * (total - len(delays))

    added: list[float] = []
    removed: list[float] = []
    for change in range(changes):
        port = 21_000 + change
        address = f"127.0.0.1:{port}"
        added += await measure(
            "seen provider", address, lambda p=port: change_provider(kazoo, p, True)
        )
        removed += await measure(
            "gone provider", address, lambda p=port: change_provider(kazoo, p, False)
        )
    rule_samples: list[float] = []
    path = rule_path(TENANT, SERVICE, "breaker")
    await asyncio.to_thread(kazoo.create, path, b"", makepath=True)
    for change in range(changes):
        document = json.dumps({"schema": 1, "min_calls": 100 + change}).encode()
        rule_samples += await measure(
            "seen rule", str(100 + change), lambda d=document: kazoo.retry(kazoo.set, path, d)
        )
    return {
        "provider_change": percentiles(added + removed),
        "provider_add": percentiles(added),
        "provider_remove": percentiles(removed),
        "rule_push": percentiles(rule_samples),
    }


async def restart_storm(
    zk: LocalZooKeeper,
    workers: Workers,
    total: int,
    ports: set[int],
    jitter: float,
) -> dict[str, Any]:
    """Restart ZooKeeper, replace one provider, and time each consumer's return to the
    correct list, from the moment ZooKeeper serves again."""
    await workers.tell_jitter(jitter)
    while not workers.lists.empty():
        workers.lists.get_nowait()
    converged: dict[str, tuple[float, bool]] = {}
    with Mntr(zk.port) as counters:
        stopped = time.monotonic()
        await zk.astop()
        await zk.astart()
        serving = time.monotonic()
        gone, new = min(ports), max(ports) + 1
        ports.discard(gone)
        ports.add(new)
        async with connected(zk) as kazoo:  # a new session: connecting waits for no hang
            await asyncio.to_thread(change_provider, kazoo, gone, False)
            await asyncio.to_thread(change_provider, kazoo, new, True)
        expected = digest(f"127.0.0.1:{port}" for port in ports)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RESTART_DEADLINE):
                while len(converged) < total:
                    name, seen, renewed, at = await workers.lists.get()
                    if seen == expected:
                        converged.setdefault(name, (at - serving, renewed))
        await asyncio.sleep(0.5)  # the tail of the storm, for the counters
    delays = sorted(delay for delay, _ in converged.values())
    return {
        "jitter_s": jitter,
        "outage_s": round(serving - stopped, 2),
        "converged": len(converged),
        "converged_within_10s": sum(delay < 10 for delay in delays),
        "sessions_expired": sum(renewed for _, renewed in converged.values()),
        "all_converged_s": round(delays[-1], 2) if len(delays) == total else None,
        "converge": percentiles(delays or [RESTART_DEADLINE]),
        "peak_packets_per_s": round(counters.peak_rate("zk_packets_received")),
        "packets_received": counters.last("zk_packets_received"),
        "peak_outstanding_requests": counters.peak("zk_outstanding_requests"),
    }


class AddWatch(tuple[str, int]):
    """ZooKeeper 3.6's addWatch request (opcode 106), which kazoo 2.11 does not speak."""

    type = 106
    PERSISTENT_RECURSIVE = 1

    def serialize(self) -> bytearray:
        path, mode = self
        return bytearray(write_string(path) + int_struct.pack(mode))

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> bool:
        return True


async def recursive_watch(zk: LocalZooKeeper, changes: int) -> dict[str, Any]:
    """The side variant: one persistent recursive watch on the service's cluster, what
    ZooKeeper holds for it, and what one provider change costs a consumer that uses it."""
    root = cluster_path(TENANT, SERVICE, CLUSTER)
    loop = asyncio.get_running_loop()
    heard_at: asyncio.Queue[float] = asyncio.Queue()
    notifications = 0
    async with connected(zk) as watcher, connected(zk) as kazoo:
        connection = watcher._connection
        read_event = connection._read_watch_event

        def heard(buffer: bytes, offset: int) -> Any:  # kazoo's thread
            nonlocal notifications
            Watch.deserialize(buffer, offset)  # whatever its kind: each one counts
            notifications += 1
            loop.call_soon_threadsafe(heard_at.put_nowait, time.monotonic())
            return read_event(buffer, offset)

        connection._read_watch_event = heard
        before = int(mntr(zk.port).get("zk_watch_count", 0))
        added = watcher.handler.async_result()
        watcher._call(AddWatch((root, AddWatch.PERSISTENT_RECURSIVE)), added)
        await asyncio.to_thread(added.get, 10)
        watches = int(mntr(zk.port).get("zk_watch_count", 0)) - before
        delays: list[float] = []
        for change in range(2 * changes):
            port = 22_000 + change // 2
            started = time.monotonic()
            await asyncio.to_thread(change_provider, kazoo, port, change % 2 == 0)
            delays.append(await asyncio.wait_for(heard_at.get(), 10) - started)
        listing = await asyncio.to_thread(kazoo.get_children, f"{root}/normal")
        await asyncio.sleep(0.2)  # any second notification of the last change
    return {
        "watches_per_service": watches,
        "notifications_per_change": round(notifications / (2 * changes), 2),
        "reads_per_add": 1,  # the event names the new node: one get, no listing
        "reads_per_remove": 0,
        "child_listing_bytes_saved": sum(len(name) + 4 for name in listing),
        "notified": percentiles(delays),
    }


async def memory(
    zookeeper: LocalZooKeeper, work: Path, services: int, per_service: int
) -> dict[str, Any]:
    """RSS and Python heap of one consumer holding `services` x `per_service` instances,
    and of as many bare grpc.aio channels: each measured in a fresh process, so that RSS
    counts only what it holds (not pages this process freed before)."""
    kazoo = KazooClient(hosts=zookeeper.hosts)
    await asyncio.to_thread(kazoo.start, 10)
    for service in range(services):
        for port in range(per_service):
            await asyncio.to_thread(plant, kazoo, f"M{service}", 30_000 + port)
    try:
        # tracemalloc's own records would swell RSS: heap and RSS come from separate runs.
        held: dict[str, dict[str, Any]] = {}
        for kind in ("consumer", "channels"):
            held[kind] = {}
            for heap in (False, True):
                probe = _memory_probe(kind, zookeeper.url, work, services, per_service, heap)
                held[kind].update(await probe)
        consumer, channels = held["consumer"], held["channels"]
    finally:
        await asyncio.to_thread(kazoo.stop)
        kazoo.close()
    held = consumer["instances"]
    return {
        "services": services,
        "instances": held,
        "python_heap_kib": consumer["python_heap_kib"],
        "rss_kib": consumer["rss_kib"],
        "python_heap_per_instance_kib": round(consumer["python_heap_kib"] / max(1, held), 1),
        "channels_rss_kib": channels["rss_kib"],
        "channels_python_heap_kib": channels["python_heap_kib"],
        "channels_share_of_rss": round(channels["rss_kib"] / max(1, consumer["rss_kib"]), 2),
    }


async def _memory_probe(
    kind: str, registry: str, work: Path, services: int, per_service: int, heap: bool
) -> dict[str, Any]:
    """The RSS (or with `heap`, the Python heap) `kind` holds, from a fresh process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--memory-of", kind, "--registry", registry,
        "--work", str(work), "--held", f"{services}x{per_service}",
        *(["--heap"] if heap else []), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode:
        raise SystemExit(f"the {kind} memory probe failed ({process.returncode})")
    figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return figures


async def memory_of(
    kind: str, registry: str, work: Path, services: int, per_service: int, heap: bool
) -> None:
    """In a fresh process: what `kind` holds, printed as JSON: its RSS, or with `heap` its
    Python heap. "consumer": a csf.Consumer listing every service (one gRPC channel an
    instance); "channels": that many bare grpc.aio channels, never connected, as the
    consumer's are until called."""
    import grpc

    if heap:
        tracemalloc.start()
    rss_before = rss_kib()
    held: list[Any] = []
    if kind == "consumer":
        client = csf.Consumer(registry=registry, tenant=TENANT, app="mem",
                              snapshot_dir=work / "mem", observability=OFF)  # fmt: skip
        await client.start()
        for service in range(services):
            await client.directory(f"M{service}").wait_listed()
        held = [e for s in range(services) for e in client.directory(f"M{s}").endpoints]
    else:
        held = [grpc.aio.insecure_channel(f"127.0.0.1:{30_000 + port}")
                for _ in range(services) for port in range(per_service)]  # fmt: skip
    figures: dict[str, Any] = {"instances": len(held)}
    if heap:
        figures["python_heap_kib"] = round(tracemalloc.get_traced_memory()[0] / 1024)
    else:
        figures["rss_kib"] = rss_kib() - rss_before
    print(json.dumps(figures), flush=True)
    if kind == "consumer":
        await client.close()
    else:
        for channel in held:
            await channel.close()


async def run(consumers: int, processes: int, providers: int, changes: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="csf-bench-") as work,
        LocalZooKeeper(Path(work) / "zk") as zookeeper,
    ):
        result = {
            "machine": f"{platform.node()} {platform.machine()}, Python {platform.python_version()}"
        }
        result["convergence"] = await convergence(
            zookeeper, Path(work), consumers, processes, providers, changes
        )
        result["recursive_watch"] = await recursive_watch(zookeeper, changes)
        result["memory"] = await memory(zookeeper, Path(work), 50, 20)
        return result


def report(data: dict[str, Any]) -> None:
    convergence, memory = data["convergence"], data["memory"]
    consumers, providers = convergence["consumers"], convergence["providers"]
    processes = convergence["processes"]
    print(
        f"{data['machine']}: {consumers} consumers in {processes} processes, {providers} providers"
    )
    for name in ("provider_add", "provider_remove", "provider_change", "rule_push"):
        f = convergence[name]
        print(
            f"  {name:16} reaches every consumer: p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms,"
            f" max {f['max_ms']} ms over {f['samples']} sightings"
        )
    watches = convergence["watches"]
    print(
        f"  ZooKeeper holds {watches['zk_watch_count']} watches"
        f" ({watches['per_consumer']} a consumer) on {watches['connections']} connections"
    )
    for label, r in convergence["restart"].items():
        f = r["converge"]
        done = (
            f"all {consumers} hold the correct list {r['all_converged_s']} s after it serves"
            if r["all_converged_s"] is not None
            else f"only {r['converged']} of {consumers} converged within {RESTART_DEADLINE} s"
        )
        print(
            f"  restart, {label} ({r['jitter_s']} s): ZooKeeper back after {r['outage_s']} s;"
            f" {done} (p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms,"
            f" {r['converged_within_10s']} within 10 s, {r['sessions_expired']} after their"
            f" session expired);"
            f" peak {r['peak_packets_per_s']} requests/s, {r['packets_received']} in all,"
            f" at most {r['peak_outstanding_requests']} outstanding"
        )
    r = data["recursive_watch"]
    print(
        f"  side variant, one persistent recursive watch a service: {r['watches_per_service']}"
        f" watch in ZooKeeper instead of {round(watches['per_consumer'])}, "
        f"{r['notifications_per_change']} notification a change, reads per add/remove"
        f" {r['reads_per_add']}/{r['reads_per_remove']} instead of 2/1 (a listing of"
        f" {r['child_listing_bytes_saved']} B saved each); notified p50"
        f" {r['notified']['p50_ms']} ms (one consumer alone)"
    )
    print(
        f"  one consumer holding {memory['instances']} instances of {memory['services']}"
        f" services: Python heap +{memory['python_heap_kib']} KiB"
        f" ({memory['python_heap_per_instance_kib']} KiB an instance), RSS +{memory['rss_kib']}"
        f" KiB; as many bare grpc.aio channels: RSS +{memory['channels_rss_kib']} KiB, heap"
        f" +{memory['channels_python_heap_kib']} KiB ({memory['channels_share_of_rss']:.0%}"
        f" of the consumer's RSS)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 consumers in 10 processes")
    parser.add_argument("--consumers", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=20, help="consumer processes")
    parser.add_argument("--providers", type=int, default=200)
    parser.add_argument("--changes", type=int, default=10, help="providers added and removed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--registry", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--memory-of", choices=("consumer", "channels"), help=argparse.SUPPRESS)
    parser.add_argument("--held", help=argparse.SUPPRESS)
    parser.add_argument("--heap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        services, per_service = (int(n) for n in args.held.split("x"))
        asyncio.run(
            memory_of(args.memory_of, args.registry, args.work, services, per_service, args.heap)
        )
        return
    if args.worker:
        asyncio.run(worker(args.registry, args.worker, args.work))
        return
    consumers, processes, changes = (
        (100, 10, 5) if args.quick else (args.consumers, args.processes, args.changes)
    )
    data = asyncio.run(run(consumers, processes, args.providers, changes))
    report(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
