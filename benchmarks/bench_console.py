"""What csf-console's pages cost with 2,000 services, and how soon a CLI change shows.

    python benchmarks/bench_console.py [--quick] [--services N] [--rounds N] [--out FILE]

One ZooKeeper of its own and a closed tenant (digest ACL) holding N services (2,000 by
default), each with the demo's descriptor imported and two provider instance nodes, as
a busy tenant has. A real csf-console process serves it; an httpx client on the same
machine logs in and, round after round, times (wall clock, request to last byte):

- the services list's first page, its last page, and a search matching 1 in 20;
- one service's page (descriptor compiled, providers parsed, rules read);
- how long a lifecycle change written with the admin code csf-registry runs takes to
  reach an open service page's event stream (`/events`, read again every 0.5 s).

Figures are medians and p95 over rounds. The page figures are the console's whole cost
per request (ZooKeeper reads, rendering, HTTP), measured alternately in each round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from csf.config import ZooKeeperURL, parse_registry_url
from csf.console.settings import DEFAULT_REFRESH_S
from csf.registry.access import ensure_shared_parents
from csf.registry.admin import RegistryAdmin
from csf.registry.descriptors import export, parse
from csf.registry.instance import Instance
from csf.registry.paths import instance_path, tenant_path
from csf.testing.zookeeper import LocalZooKeeper, free_port

DEFAULT_OUT = Path(__file__).parent / "results" / "console.json"
TENANT, USER, PASSWORD = "BenchTenant", "ops", "ops-password-1"
REFRESH_S = DEFAULT_REFRESH_S
CHUNK = 50  # descriptors per import transaction (each ~4 KB; ZooKeeper takes 1 MB at once)


def _populate(url: ZooKeeperURL, services: int) -> list[str]:
    """The tenant, its services, their descriptors and two instance nodes each."""
    client = KazooClient(hosts=url.connect_string, auth_data=[("digest", f"{USER}:{PASSWORD}")])
    client.start(timeout=10)
    acl = [make_digest_acl(USER, PASSWORD, all=True)]
    ensure_shared_parents(client)
    client.create(tenant_path(TENANT), b"", acl=acl)
    client.stop()
    client.close()
    codes = [f"SVC{n:04d}" for n in range(services)]
    (template,) = parse(export(["demo.providers"]))
    with RegistryAdmin(dataclasses.replace(url, digest=(USER, PASSWORD)), TENANT) as admin:
        for start in range(0, services, CHUNK):
            chunk = codes[start : start + CHUNK]
            admin.import_descriptors(dataclasses.replace(template, service=c) for c in chunk)
            transaction = admin.client.transaction()
            for code in chunk:
                for port in (50051, 50052):
                    instance = Instance(host="127.0.0.1", port=port, services={})
                    path = instance_path(
                        TENANT, code, "defaultCluster", "normal", f"127.0.0.1:{port}"
                    )
                    admin.client.ensure_path(path.rsplit("/", 1)[0])
                    transaction.create(path, instance.to_json())
            transaction.commit()
    return codes


@contextlib.asynccontextmanager
async def console(registry: str) -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csf.console.cli", "--registry", registry, "--port", str(port),
        "--log-level", "warning", stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe, asyncio.timeout(30):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get(base + "/login")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield base
    finally:
        process.terminate()
        await process.wait()


async def _timed(client: httpx.AsyncClient, path: str) -> float:
    started = time.perf_counter()
    answer = await client.get(path)
    took = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path}: {answer.status_code}")
    return took


async def _change_seen(
    client: httpx.AsyncClient, admin: RegistryAdmin, code: str, rounds: int
) -> list[float]:
    """Seconds from a lifecycle change written to its arrival on an open page's stream."""
    seen: list[float] = []
    async with client.stream("GET", f"/events?view=service&code={code}") as stream:
        lines = stream.aiter_lines()
        await anext(lines)  # the first update: the page as it is
        for index in range(rounds):
            action, status = ("offline", "offline") if index % 2 == 0 else ("online", "online")
            # Lines arrive as the page is read again: a change made just after one waits
            # a whole period. Writing at a random point of the period samples them all.
            await asyncio.sleep(random.uniform(0, REFRESH_S))
            started = time.perf_counter()
            await asyncio.to_thread(admin.transition, code, action)
            async with asyncio.timeout(10):
                async for line in lines:
                    if line.startswith("data:") and f"status-{status}" in line:
                        seen.append(time.perf_counter() - started)
                        break
    return seen


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered) * 1e3, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1e3, 1),
        "n": len(ordered),
    }


async def measure(zookeeper: LocalZooKeeper, services: int, rounds: int) -> dict[str, Any]:
    url = parse_registry_url(zookeeper.url)
    assert isinstance(url, ZooKeeperURL)
    started = time.perf_counter()
    codes = await asyncio.to_thread(_populate, url, services)
    print(f"{services} services written in {time.perf_counter() - started:.1f} s")
    last_page = (services + 49) // 50
    pages = {
        "services, first page": "/services",
        "services, last page": f"/services?page={last_page}",
        "services, search (1 in 20)": "/services?q=5",
        "one service's page": f"/services/{codes[0]}",
    }
    timings: dict[str, list[float]] = {name: [] for name in pages}
    async with (
        console(zookeeper.url) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        form = await client.get("/login")  # the form's token, and its cookie
        found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        token = found.group(1) if found else ""
        fields = {"tenant": TENANT, "user": USER, "password": PASSWORD, "csrf_token": token}
        login = await client.post("/login", data=fields)
        if login.status_code != 303:
            raise RuntimeError(f"login: {login.status_code}")
        for path in pages.values():  # warm up: templates compiled, connections made
            await _timed(client, path)
        for index in range(rounds):
            order = list(pages.items())
            order = order[index % len(order) :] + order[: index % len(order)]
            for name, path in order:
                timings[name].append(await _timed(client, path))
        admin = RegistryAdmin(dataclasses.replace(url, digest=(USER, PASSWORD)), TENANT)
        with admin:
            await asyncio.to_thread(admin.transition, codes[1], "online")
            seen = await _change_seen(client, admin, codes[1], max(4, rounds // 2))
    results = {name: _summary(values) for name, values in timings.items()}
    results["a CLI change on the open page"] = _summary(seen)
    return {"services": services, "rounds": rounds, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 services, 5 rounds")
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    services, rounds = (200, 5) if args.quick else (args.services, args.rounds)
    with (
        tempfile.TemporaryDirectory(prefix="csf-bench-console-") as work,
        LocalZooKeeper(Path(work) / "zk") as zookeeper,
    ):
        data = asyncio.run(measure(zookeeper, services, rounds))
    data["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    print(f"\ncsf-console with {services} services, {rounds} rounds (wall clock per request):")
    for name, row in data["results"].items():
        print(f"  {name:32} median {row['median_ms']:7.1f} ms   p95 {row['p95_ms']:7.1f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
