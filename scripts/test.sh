#!/usr/bin/env bash
# Lint, type-check and test CSF. Runs the slow tests too with --slow or when CI is set.
source "$(dirname "$0")/_setup.sh"
ensure_zookeeper
ensure_venv
cd "$ROOT"

echo "==> ruff"
"$VENV/bin/ruff" check csf demo tests scripts benchmarks
"$VENV/bin/ruff" format --check csf demo tests scripts benchmarks
echo "==> mypy --strict"
"$VENV/bin/mypy" --strict csf demo/providers.py demo/__main__.py

# One pytest run, so its closing line counts every test: the slow ones too when asked.
marks=(-m "not slow")
[ -z "${CI:-}" ] || marks=()
pytest_args=()
for arg in "$@"; do
  if [ "$arg" = "--slow" ]; then marks=(); else pytest_args+=("$arg"); fi
done

echo "==> pytest ${marks[*]:-(all, slow included)}"
"$PY" -m pytest "${marks[@]}" "${pytest_args[@]}"
