"""Draw the benchmark results (benchmarks/results/*.json) as PNG charts, and print the
README's table.

    python benchmarks/charts.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt

RESULTS = Path(__file__).parent / "results"
VARIANTS = ("raw", "empty", "default", "traced", "dubbo")


def overhead_chart(data: dict[str, Any], out: Path) -> None:
    rows = [r for r in data["results"] if r["payload"] == "100B"]
    levels = sorted({r["concurrency"] for r in rows})
    figure, (calls, latency) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(VARIANTS)
    for offset, variant in enumerate(VARIANTS):
        mine = {r["concurrency"]: r for r in rows if r["variant"] == variant}
        if not mine:
            continue
        # The apache-dubbo peer runs at some levels only: a missing bar is a zero.
        xs = [i + offset * width for i in range(len(levels))]
        label = "apache-dubbo" if variant == "dubbo" else variant
        throughput = [mine[level]["calls_per_s"] if level in mine else 0 for level in levels]
        p50 = [mine[level]["p50_us"] / 1000 if level in mine else 0 for level in levels]
        calls.bar(xs, throughput, width, label=label)
        latency.bar(xs, p50, width, label=label)
    for axis, title in ((calls, "calls/s (100 B)"), (latency, "p50 latency, ms (100 B)")):
        axis.set_xticks(
            [i + 0.3 for i in range(len(levels))], [f"{level} in flight" for level in levels]
        )
        axis.set_title(title)
        axis.legend()
    figure.suptitle(f"CSF next to raw grpc.aio: {data['machine']}")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def registry_chart(data: dict[str, Any], out: Path) -> None:
    convergence = data["convergence"]
    names = ("provider_change", "rule_push")
    figure, axis = plt.subplots(figsize=(6, 4))
    for offset, percentile in enumerate(("p50_ms", "p99_ms")):
        xs = [i + offset * 0.4 for i in range(len(names))]
        axis.bar(xs, [convergence[name][percentile] for name in names], 0.4, label=percentile)
    axis.axhline(200, color="grey", linestyle="--", label="target p99")
    axis.set_xticks([i + 0.2 for i in range(len(names))], ["provider change", "rule push"])
    axis.set_ylabel("ms until every consumer saw it")
    axis.set_title(f"{convergence['consumers']} consumers, {convergence['providers']} providers")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def overhead_table(data: dict[str, Any]) -> str:
    titles = ("in flight", "payload", "variant", "calls/s", "x raw (spread)", "p50 us",
              "client CPU us", "server CPU us")  # fmt: skip
    lines = ["| " + " | ".join(titles) + " |", "|" + " --- |" * len(titles)]
    order = sorted(
        data["results"],
        key=lambda r: (r["concurrency"], r["payload"], VARIANTS.index(r["variant"])),
    )
    for r in order:
        lines.append(
            f"| {r['concurrency']} | {r['payload']} | {r['variant']} | {r['calls_per_s']:.0f} | "
            f"{r['ratio_to_raw']:.2f} ({r['ratio_spread']:.2f}) | {r['p50_us']:.0f} | "
            f"{r['client_cpu_us']:.0f} | {r['server_cpu_us']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    overhead = RESULTS / "bench_overhead.json"
    if overhead.exists():
        data = json.loads(overhead.read_text())
        overhead_chart(data, RESULTS / "bench_overhead.png")
        print(overhead_table(data))
    registry = RESULTS / "bench_registry.json"
    if registry.exists():
        registry_chart(json.loads(registry.read_text()), RESULTS / "bench_registry.png")
    print(f"charts written under {RESULTS}")


if __name__ == "__main__":
    main()
