"""The behaviour-mutation suite: break one promise at a time and check that a test notices.

Each `[[mutant]]` of `scripts/mutants.toml` names a file under `csf/`, one line of its
code, the line that breaks the promise, and the tests that guard it. In a scratch copy
of the tree, for each mutant: replace the line, run those tests, put the line back.

- killed:   a test failed, as it should;
- survived: every test passed with the promise broken (a hole in the suite);
- stale:    the line is no longer in the file exactly once (the code moved: rewrite the
            entry to break the same promise where it now lives; never drop it);
- error:    no test failed, yet pytest could not run them all (a fixture that could not
            set up, such as a ZooKeeper that would not start): no verdict.

The selected tests must pass on the unbroken copy first, or no verdict means anything.
Exit status: 0 when every mutant is killed, 1 otherwise, 2 when that baseline fails.
`--mutmut` also runs mutmut on the pure-logic modules and prints its score.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import mutmut_score  # beside this script

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "scripts" / "mutants.toml"
RESULTS = ROOT / "benchmarks" / "results" / "mutants.json"
# Left out of the scratch copy: nothing a test imports or reads.
NOT_COPIED = shutil.ignore_patterns(
    ".venv", ".git", "mutants", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"
)
# `-m ""`: a mutant's tests run even when marked slow. `--timeout`: a mutant that hangs a
# test fails it. `-x`: the first failure is verdict enough.
PYTEST = ("-p", "no:cacheprovider", "-q", "-x", "-m", "", "--timeout", "120")


@dataclass(frozen=True)
class Mutant:
    name: str
    promise: str
    file: str
    code: str
    mutant: str
    tests: tuple[str, ...]


class CatalogueError(Exception):
    """scripts/mutants.toml is malformed."""


def load(path: Path = CATALOGUE) -> list[Mutant]:
    """The catalogue's mutants; CatalogueError names the entry and field at fault."""
    try:
        entries = tomllib.loads(path.read_text()).get("mutant", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"{path}: {exc}") from exc
    mutants: list[Mutant] = []
    for index, entry in enumerate(entries):
        where = f"{path.name}: mutant {index + 1} ({entry.get('name', '?')})"
        strings = {k: entry.get(k) for k in ("name", "promise", "file", "code", "mutant")}
        bad = [k for k, v in strings.items() if not isinstance(v, str) or not v.strip()]
        tests = entry.get("tests")
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
            bad.append("tests")
        unknown = set(entry) - {*strings, "tests"}
        if bad or unknown:
            raise CatalogueError(f"{where}: bad or missing {bad}, unknown {sorted(unknown)}")
        mutants.append(Mutant(**strings, tests=tuple(tests)))
    names = [m.name for m in mutants]
    if len(set(names)) != len(names):
        raise CatalogueError(f"{path.name}: a mutant name appears twice")
    return mutants


def mutate(source: str, code: str, replacement: str) -> str | None:
    """`source` with the one line whose stripped text is `code` replaced (its indentation
    kept); None when that line is not there exactly once."""
    lines = source.splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if line.strip() == code.strip()]
    if len(found) != 1:
        return None
    line = lines[found[0]]
    indent = line[: len(line) - len(line.lstrip())]
    ending = line[len(line.rstrip("\r\n")) :]
    lines[found[0]] = indent + replacement.strip() + ending
    return "".join(lines)


def run_tests(scratch: Path, tests: tuple[str, ...], log: Path) -> str:
    """'passed', 'failed' (a test failed) or 'error' (pytest, or a fixture such as a
    ZooKeeper that would not start, could not run the tests) for `tests` run against
    the scratch copy's code. An error is no verdict on the mutant."""
    report = log.with_suffix(".xml")
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    with log.open("w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "pytest", *PYTEST, f"--junitxml={report}", *tests],
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    if code == 0:
        return "passed"
    try:
        suites = list(ElementTree.parse(report).getroot().iter("testsuite"))
    except (OSError, ElementTree.ParseError):
        return "error"
    failures = sum(int(suite.get("failures", "0")) for suite in suites)
    return "failed" if code == 1 and failures else "error"


def imports_from(scratch: Path) -> bool:
    """Whether Python run as the tests are imports `csf` from the scratch copy."""
    env = {**os.environ, "PYTHONPATH": str(scratch)}
    found = subprocess.run(
        [sys.executable, "-c", "import csf; print(csf.__file__)"],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return Path(found).is_relative_to(scratch)


def tail(log: Path, lines: int = 15) -> str:
    return "".join(log.read_text(errors="replace").splitlines(keepends=True)[-lines:])


def judge(scratch: Path, mutant: Mutant, logs: Path) -> str:
    target = scratch / mutant.file
    original = target.read_text()
    broken = mutate(original, mutant.code, mutant.mutant)
    if broken is None:
        return "stale"
    target.write_text(broken)
    try:
        outcome = run_tests(scratch, mutant.tests, logs / f"{mutant.name}.log")
    finally:
        target.write_text(original)
    return {"passed": "survived", "failed": "killed"}.get(outcome, "error")


def run(mutants: list[Mutant], keep: bool) -> dict[str, str] | None:
    """Each mutant's verdict, or None when the unbroken copy gives none (its tests fail)."""
    scratch = Path(tempfile.mkdtemp(prefix="csf-mutants-"))
    tree = scratch / "tree"
    logs = scratch / "logs"
    logs.mkdir()
    shutil.copytree(ROOT, tree, ignore=NOT_COPIED)
    try:
        if not imports_from(tree):
            print("the scratch copy's csf is not the one Python imports: no verdict possible")
            return None
        every_test = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
        print(f"baseline: {len(every_test)} tests on the unbroken code", flush=True)
        baseline = logs / "baseline.log"
        if run_tests(tree, every_test, baseline) != "passed":
            print(tail(baseline, 30))
            print("baseline failed: the selected tests must pass on the unbroken code first")
            return None
        verdicts: dict[str, str] = {}
        for mutant in mutants:
            started = time.monotonic()
            verdict = verdicts[mutant.name] = judge(tree, mutant, logs)
            took = time.monotonic() - started
            print(f"{verdict:8}  {mutant.name:40} {took:5.1f}s  {mutant.promise}", flush=True)
            if verdict in ("survived", "error"):
                print(tail(logs / f"{mutant.name}.log"))
        return verdicts
    finally:
        if keep:
            print(f"scratch copy and logs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy and logs")
    parser.add_argument("--mutmut", action="store_true", help="also run mutmut and its score")
    parser.add_argument("--catalogue", type=Path, default=CATALOGUE, help="another catalogue")
    args = parser.parse_args(argv)
    try:
        mutants = load(args.catalogue)
    except CatalogueError as exc:
        print(exc, file=sys.stderr)
        return 2
    unknown = set(args.names) - {m.name for m in mutants}
    if unknown:
        print(f"unknown mutants: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    chosen = [m for m in mutants if not args.names or m.name in args.names]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name:40} {mutant.file}: {mutant.promise}")
        return 0
    verdicts = run(chosen, args.keep)
    if verdicts is None:
        return 2
    counts = {v: list(verdicts.values()).count(v) for v in ("killed", "survived", "stale", "error")}
    print("mutants: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    if not args.names and args.catalogue == CATALOGUE:  # only a whole run is the record
        RESULTS.write_text(json.dumps({"counts": counts, "verdicts": verdicts}, indent=2) + "\n")
    status = 0 if counts["killed"] == len(chosen) else 1
    if args.mutmut:
        status = max(status, mutmut_score.main([]))
    return status


if __name__ == "__main__":
    sys.exit(main())
