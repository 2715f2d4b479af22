"""mutmut's score on the pure-logic modules, per module and in total.

Runs `mutmut run` (configured in pyproject.toml's [tool.mutmut]: which modules it
mutates, which unit tests it runs) at low priority, then reads the verdicts mutmut left
in mutants/**/*.meta and prints, per module and in total: mutants, killed, survived,
timeout, suspicious, no tests (or skipped), and the score killed / tested, where tested
counts the mutants whose tests ran (killed, survived, timeout, suspicious, segfault).
The survivors are listed by name (`mutmut show NAME` prints the change). The figures go
to benchmarks/results/mutmut.json too. mutmut keeps its verdicts in mutants/ and re-tests
only what changed; `rm -rf mutants` first for a run from scratch.

    python scripts/mutmut_score.py                  # run mutmut, then report
    python scripts/mutmut_score.py --results-only   # report the last run

Exit status: 0 when the total score reaches --min-score, 1 below it, 2 when mutmut
failed or left no verdicts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
RESULTS = ROOT / "benchmarks" / "results" / "mutmut.json"
LOG = MUTANTS / "mutmut-run.log"
RUN_TIME = MUTANTS / "mutmut-run-seconds.txt"  # how long the last run took
MIN_SCORE = 80.0

# mutmut 3's exit codes per mutant (mutmut/stats.py); anything else is "suspicious".
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed",
    3: "killed",  # pytest's internal error: the mutant broke the tests
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",  # SIGXCPU: over mutmut's CPU-time limit
    24: "timeout",
    152: "timeout",
    255: "timeout",
    37: "caught by type check",
    -11: "segfault",
    -9: "segfault",
    2: "interrupted",
    None: "not checked",
}
COLUMNS = ("killed", "survived", "timeout", "suspicious", "no tests", "skipped")
TESTED = ("killed", "survived", "timeout", "suspicious", "segfault")


@dataclass
class Figures:
    """The verdicts of one module's mutants (or of all of them)."""

    counts: Counter[str] = field(default_factory=Counter)
    survivors: list[str] = field(default_factory=list)

    def add(self, name: str, status: str) -> None:
        self.counts[status] += 1
        if status == "survived":
            self.survivors.append(name)

    @property
    def mutants(self) -> int:
        return sum(self.counts.values())

    @property
    def tested(self) -> int:
        return sum(self.counts[status] for status in TESTED)

    @property
    def score(self) -> float:
        """Per cent of the tested mutants that a test killed."""
        return 100.0 * self.counts["killed"] / self.tested if self.tested else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "mutants": self.mutants,
            **{status.replace(" ", "_"): self.counts[status] for status in COLUMNS},
            "other": self.mutants - sum(self.counts[status] for status in COLUMNS),
            "tested": self.tested,
            "score": round(self.score, 1),
            "survivors": sorted(self.survivors),
        }


def read_results(mutants_dir: Path = MUTANTS) -> dict[str, Figures]:
    """The verdicts mutmut recorded, per mutated module (its path under the tree)."""
    modules: dict[str, Figures] = {}
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not exit_codes:
            continue
        figures = modules[meta.relative_to(mutants_dir).as_posix()[: -len(".meta")]] = Figures()
        for name, code in exit_codes.items():
            figures.add(name, STATUS_BY_EXIT_CODE.get(code, "suspicious"))
    return modules


def total(modules: dict[str, Figures]) -> Figures:
    whole = Figures()
    for figures in modules.values():
        whole.counts.update(figures.counts)
        whole.survivors.extend(figures.survivors)
    return whole


def run_mutmut(max_children: int) -> tuple[int, float]:
    """mutmut's exit status and how long it took; its output goes to mutants/mutmut-run.log."""
    command = ["nice", "-n", "10", sys.executable, "-m", "mutmut", "run"]
    command += ["--max-children", str(max_children)]
    MUTANTS.mkdir(exist_ok=True)
    started = time.monotonic()
    with LOG.open("w") as log:
        status = subprocess.run(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        ).returncode
    seconds = time.monotonic() - started
    RUN_TIME.write_text(f"{seconds:.0f}\n")
    return status, seconds


def last_run_seconds() -> int | None:
    try:
        return int(RUN_TIME.read_text())
    except (OSError, ValueError):
        return None


def report(modules: dict[str, Figures]) -> str:
    header = f"{'module':36} {'mutants':>7} " + " ".join(f"{c:>10}" for c in COLUMNS)
    lines = [header + f" {'score':>6}"]
    for name, figures in [*sorted(modules.items()), ("total", total(modules))]:
        cells = " ".join(f"{figures.counts[c]:>10}" for c in COLUMNS)
        lines.append(f"{name:36} {figures.mutants:>7} {cells} {figures.score:>5.1f}%")
    survivors = sorted(total(modules).survivors)
    lines.append(f"\n{len(survivors)} survivors (`mutmut show NAME` prints the change):")
    lines.extend(f"  {name}" for name in survivors)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results-only", action="store_true", help="report the last run without running"
    )
    parser.add_argument("--max-children", type=int, default=2, help="mutmut's workers")
    parser.add_argument("--min-score", type=float, default=MIN_SCORE, help="per cent to pass")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args(argv)

    if not args.results_only:
        print(f"mutmut run (output in {LOG.relative_to(ROOT)}) ...", flush=True)
        status, _ = run_mutmut(args.max_children)
        if status != 0:
            print(f"mutmut run failed with status {status}; see {LOG}", file=sys.stderr)
            return 2
    modules = read_results()
    if not modules:
        print("no mutmut verdicts in mutants/: run without --results-only", file=sys.stderr)
        return 2
    print(report(modules))
    whole = total(modules)
    seconds = last_run_seconds()
    if seconds is not None:
        print(f"\nthe last mutmut run took {seconds} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        "modules": {name: figures.as_json() for name, figures in sorted(modules.items())},
        "total": whole.as_json(),
        "run_seconds": seconds,
        "min_score": args.min_score,
    }
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    passed = whole.score >= args.min_score
    verdict = "reaches" if passed else "is below"
    print(f"score {whole.score:.1f}% {verdict} {args.min_score:.0f}%; figures in {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
