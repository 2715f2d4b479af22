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
VARIANTS = ("raw", "empty", "default", "traced", "traced_1pct", "otel", "dubbo")
# bench_registry's deadline for every consumer to converge after a restart.
RESTART_CAP = 60.0
LABELS = {"traced_1pct": "traced 1%", "otel": "official OTel", "dubbo": "apache-dubbo"}


def _by_variant(data: dict[str, Any], level: int) -> dict[str, dict[str, Any]]:
    """The 100 B rows at `level` in flight, by variant, in VARIANTS order."""
    rows = {r["variant"]: r for r in data["results"]
            if r["payload"] == "100B" and r["concurrency"] == level}  # fmt: skip
    return {variant: rows[variant] for variant in VARIANTS if variant in rows}


def overhead_chart(data: dict[str, Any], uvloop: dict[str, Any] | None, out: Path) -> None:
    """Calls/s per variant at each level; CPU per call on each side and latency
    percentiles at 64 in flight; raw and CSF on both event loops."""
    rows = [r for r in data["results"] if r["payload"] == "100B"]
    levels = sorted({r["concurrency"] for r in rows})
    figure, ((calls, cpu), (latency, loops)) = plt.subplots(2, 2, figsize=(13, 8))
    width = 0.8 / len(VARIANTS)
    for offset, variant in enumerate(VARIANTS):
        mine = {r["concurrency"]: r for r in rows if r["variant"] == variant}
        if not mine:
            continue
        # Some peers run at some levels only: a missing bar is a zero.
        xs = [i + offset * width for i in range(len(levels))]
        throughput = [mine[level]["calls_per_s"] if level in mine else 0 for level in levels]
        calls.bar(xs, throughput, width, label=LABELS.get(variant, variant))
    calls.set_xticks([i + 0.4 for i in range(len(levels))], [f"{n} in flight" for n in levels])
    calls.set_title("calls/s (100 B)")
    calls.legend(fontsize=8)
    at_64 = _by_variant(data, 64)
    names = [LABELS.get(v, v) for v in at_64]
    xs = list(range(len(at_64)))
    cpu.bar([x - 0.2 for x in xs], [r["client_cpu_us"] for r in at_64.values()], 0.4,
            label="client")  # fmt: skip
    cpu.bar([x + 0.2 for x in xs], [r["server_cpu_us"] for r in at_64.values()], 0.4,
            label="server")  # fmt: skip
    cpu.set_xticks(xs, names, fontsize=8, rotation=20)
    cpu.set_title("CPU us per call, each side (64 in flight)")
    cpu.legend(fontsize=8)
    for offset, key in enumerate(("p50_us", "p99_us")):
        latency.bar([x + (offset - 0.5) * 0.4 for x in xs],
                    [r[key] / 1000 for r in at_64.values()], 0.4, label=key[:3])  # fmt: skip
    latency.set_xticks(xs, names, fontsize=8, rotation=20)
    latency.set_title("latency ms (64 in flight)")
    latency.legend(fontsize=8)
    runs = {"asyncio": data, "uvloop": uvloop} if uvloop else {"asyncio": data}
    for offset, (loop, run) in enumerate(runs.items()):
        mine = _by_variant(run, 64)
        shown = [v for v in ("raw", "default", "traced") if v in mine]
        loops.bar([i + offset * 0.4 for i in range(len(shown))],
                  [mine[v]["calls_per_s"] for v in shown], 0.4, label=loop)  # fmt: skip
        loops.set_xticks([i + 0.2 for i in range(len(shown))], shown)
    loops.set_title("calls/s by event loop (64 in flight)")
    loops.legend(fontsize=8)
    figure.suptitle(f"CSF next to raw grpc.aio: {data['machine']}")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def registry_chart(runs: list[dict[str, Any]], out: Path) -> None:
    """How long a change takes to reach every consumer, and ZooKeeper's restart, by the
    number of consumers watching (one run each)."""
    runs = sorted(runs, key=lambda run: run["convergence"]["consumers"])
    counts = [run["convergence"]["consumers"] for run in runs]
    xs = list(range(len(runs)))
    figure, (changes, restart) = plt.subplots(1, 2, figsize=(12, 4))
    names = ("provider_add", "provider_remove", "rule_push")
    width = 0.8 / len(names)
    for offset, name in enumerate(names):
        p99 = [run["convergence"][name]["p99_ms"] for run in runs]
        changes.bar([x + offset * width for x in xs], p99, width, label=f"{name} p99")
    changes.axhline(500, color="grey", linestyle="--", label="goal p99 500 ms")
    changes.set_xticks([x + 0.4 for x in xs], [f"{n} consumers" for n in counts])
    changes.set_ylabel("ms until every consumer saw it")
    changes.legend(fontsize=8)
    for offset, jitter in enumerate(("jitter_off", "jitter_on")):
        # None: not all converged within the benchmark's deadline; drawn at it, hatched.
        seconds = [run["convergence"]["restart"][jitter]["all_converged_s"] for run in runs]
        bars = restart.bar([x + offset * 0.4 for x in xs],
                           [RESTART_CAP if s is None else s for s in seconds], 0.4,
                           label=jitter.replace("_", " "))  # fmt: skip
        for bar, converged in zip(bars, seconds, strict=True):
            if converged is None:
                bar.set_hatch("//")
    restart.axhline(10, color="grey", linestyle="--", label="goal 10 s")
    restart.set_xticks([x + 0.2 for x in xs], [f"{n} consumers" for n in counts])
    restart.set_ylabel("s until all re-listed (hatched: not all in 60 s)")
    restart.legend(fontsize=8)
    providers = runs[-1]["convergence"]["providers"]
    figure.suptitle(f"Registry: {providers} providers, {runs[-1]['machine']}")
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
    overhead, uvloop = RESULTS / "bench_overhead.json", RESULTS / "bench_overhead_uvloop.json"
    if overhead.exists():
        data = json.loads(overhead.read_text())
        on_uvloop = json.loads(uvloop.read_text()) if uvloop.exists() else None
        overhead_chart(data, on_uvloop, RESULTS / "bench_overhead.png")
        print(overhead_table(data))
    registry = [json.loads(f.read_text()) for f in sorted(RESULTS.glob("bench_registry*.json"))]
    if registry:
        registry_chart(registry, RESULTS / "bench_registry.png")
    print(f"charts written under {RESULTS}")


if __name__ == "__main__":
    main()
