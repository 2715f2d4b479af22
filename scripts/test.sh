#!/usr/bin/env bash
# Lint, type-check and test CSF. --slow adds the slow tests, --mutants the two mutation
# suites (behaviour mutants and mutmut); CI runs all of it.
source "$(dirname "$0")/_setup.sh"
ensure_zookeeper
ensure_venv
cd "$ROOT"

echo "==> ruff"
"$VENV/bin/ruff" check csf demo tests scripts benchmarks
"$VENV/bin/ruff" format --check csf demo tests scripts benchmarks
echo "==> mypy --strict"
"$VENV/bin/mypy" --strict csf demo/providers.py demo/__main__.py scripts/mutants.py scripts/mutmut_score.py

# One pytest run, so its closing line counts every test: the slow ones too when asked.
# CI (or --mutants) first runs the behaviour-mutation suite (each README promise broken
# on purpose must fail a test) and mutmut on the pure-logic modules (score at least 80%).
# They run before pytest so that pytest's closing line comes last.
marks=(-m "not slow")
mutants=""
[ -z "${CI:-}" ] || { marks=(); mutants=1; }
pytest_args=()
for arg in "$@"; do
  case "$arg" in
    --slow) marks=() ;;
    --mutants) mutants=1 ;;
    *) pytest_args+=("$arg") ;;
  esac
done

if [ -n "$mutants" ]; then
  echo "==> behaviour mutants and mutmut (scripts/mutants.py --mutmut)"
  "$PY" scripts/mutants.py --mutmut
fi

echo "==> pytest ${marks[*]:-(all, slow included)}"
"$PY" -m pytest "${marks[@]}" "${pytest_args[@]}"
