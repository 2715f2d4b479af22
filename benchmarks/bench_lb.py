"""The cost of one pick for each balancer at 10, 100 and 1,000 endpoints, and of a rebuild.

    python benchmarks/bench_lb.py [--quick] [--out benchmarks/results/bench_lb.json]

Real Endpoint objects (their channels are never connected) so a pick pays what it pays
in a consumer. Balancers and sizes are measured in alternating rounds, so drift on this
shared machine hits them all alike; the figure is the median round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from csf import Invocation
from csf.endpoint import Endpoint
from csf.lb import BALANCERS
from csf.lb.consistent_hash import Ring
from csf.registry import Instance

SIZES = (10, 100, 1_000)
DEFAULT_OUT = Path(__file__).parent / "results" / "bench_lb.json"


def _endpoints(count: int) -> list[Endpoint]:
    endpoints = []
    for index in range(count):
        endpoint = Endpoint(
            Instance(host="127.0.0.1", port=20_000 + index, weight=50 + index % 100)
        )
        endpoints.append(endpoint)
    return endpoints


def _pick_ns(picker: Any, picks: int) -> float:
    invocations = [
        Invocation("S", "/p.S/M", None, None, 0.0, hash_key=f"user-{index}") for index in range(256)
    ]
    pick = picker.pick
    start = time.perf_counter_ns()
    for index in range(picks):
        pick(invocations[index & 255])
    return (time.perf_counter_ns() - start) / picks


def _rebuild_us(factory: Any, endpoints: list[Endpoint], repeats: int) -> float:
    """A rebuild after one provider joined (the usual change): rings are edited, not redone."""
    total = 0
    for _ in range(repeats):
        Ring.of({endpoint.address: endpoint.weight for endpoint in endpoints[1:]})
        start = time.perf_counter_ns()
        factory(endpoints)
        total += time.perf_counter_ns() - start
    return total / repeats / 1_000


async def measure(rounds: int, picks: int) -> dict[str, Any]:
    pools = {size: _endpoints(size) for size in SIZES}
    pick_rounds: dict[tuple[str, int], list[float]] = {}
    rebuild_rounds: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for name, factory in BALANCERS.items():
            for size, endpoints in pools.items():
                rebuild_rounds.setdefault((name, size), []).append(
                    _rebuild_us(factory, endpoints, 3 if size == 1_000 else 10)
                )
                picker = factory(endpoints)
                for endpoint in endpoints:
                    endpoint.watchers.clear()
                pick_rounds.setdefault((name, size), []).append(_pick_ns(picker, picks))
    for endpoints in pools.values():
        await asyncio.gather(*(endpoint.close() for endpoint in endpoints))
    results = []
    for (name, size), samples in sorted(pick_rounds.items()):
        results.append(
            {
                "balancer": name,
                "endpoints": size,
                "pick_ns": round(statistics.median(samples), 1),
                "pick_ns_spread": round(max(samples) - min(samples), 1),
                "rebuild_us": round(statistics.median(rebuild_rounds[name, size]), 1),
            }
        )
    return {
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
        "rounds": rounds,
        "picks_per_round": picks,
        "results": results,
    }


def report(data: dict[str, Any]) -> None:
    rows = {(r["balancer"], r["endpoints"]): r for r in data["results"]}
    print(f"one pick (ns, median of {data['rounds']} rounds) and one rebuild (us)")
    header = "".join(f"{f'pick@{n}':>11}" for n in SIZES) + "".join(
        f"{f'rebuild@{n}':>14}" for n in SIZES
    )
    print(f"{'balancer':<26}{header}{'pick 1000/10':>14}")
    for name in sorted(BALANCERS):
        picks = [rows[name, n]["pick_ns"] for n in SIZES]
        rebuilds = [rows[name, n]["rebuild_us"] for n in SIZES]
        cells = "".join(f"{p:>11.0f}" for p in picks) + "".join(f"{r:>14.1f}" for r in rebuilds)
        print(f"{name:<26}{cells}{picks[-1] / picks[0]:>13.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and picks")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    rounds, picks = (3, 5_000) if args.quick else (7, 50_000)
    data = asyncio.run(measure(rounds, picks))
    report(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
