"""Is the default chain slower than it was? bench_overhead run on an earlier commit and on
the working tree, alternating, each run measuring CSF against raw grpc.aio itself.

    python benchmarks/bench_before_after.py --base REV [--runs 3] [--out FILE]

A run's default/raw throughput ratio is measured within that run, so machine drift
between runs cancels out; the runs of the two trees alternate (A B A B ...), and the
medians of their ratios are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).parent / "results" / "bench_before_after.json"


def export_tree(rev: str, into: Path) -> None:
    """The files of commit `rev`, without a worktree or a checkout."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def run_overhead(tree: Path, out: Path) -> dict[str, Any]:
    """One quick bench_overhead run of `tree`'s code (its csf first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(
        [sys.executable, "benchmarks/bench_overhead.py", "--quick", "--out", str(out)],
        cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def ratios(data: dict[str, Any]) -> dict[str, float]:
    """default/raw throughput at each concurrency, and the stream rate when measured."""
    found = {
        f"c{row['concurrency']}": row["ratio_to_raw"]
        for row in data["results"]
        if row["variant"] == "default" and row["payload"] == "100B"
    }
    if "streams" in data:
        found["stream"] = data["streams"]["default_over_raw"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the earlier commit")
    parser.add_argument("--runs", type=int, default=3, help="runs of each tree (default 3)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"base": [], "now": []}
    with tempfile.TemporaryDirectory(prefix="csf-before-") as work:
        base = Path(work) / "base"
        base.mkdir()
        export_tree(args.base, base)
        trees = {"base": base, "now": ROOT}
        for index in range(args.runs):
            for name, tree in trees.items():
                data = run_overhead(tree, Path(work) / f"{name}-{index}.json")
                runs[name].append(ratios(data))
                print(f"run {index + 1} {name}: {runs[name][-1]}", flush=True)
    summary: dict[str, Any] = {"base": args.base, "runs": args.runs, "medians": {}}
    for name, found in runs.items():
        keys = sorted({key for run in found for key in run})
        summary["medians"][name] = {
            key: round(statistics.median(run[key] for run in found if key in run), 3)
            for key in keys
        }
    base_medians, now_medians = summary["medians"]["base"], summary["medians"]["now"]
    summary["now_over_base"] = {
        key: round(now_medians[key] / base_medians[key], 3)
        for key in base_medians
        if key in now_medians
    }
    for key, value in summary["now_over_base"].items():
        print(
            f"default chain / raw at {key}: base {base_medians[key]:.3f}, "
            f"now {now_medians[key]:.3f} ({value:.3f}x base)"
        )
    if "stream" in now_medians:
        print(f"server stream of 1,000 messages, default / raw: now {now_medians['stream']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**summary, "all_runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
