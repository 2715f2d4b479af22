#!/usr/bin/env bash
# Lint, type-check and test CSF. Runs the slow tests too with --slow or when CI is set.
source "$(dirname "$0")/_setup.sh"
ensure_zookeeper
ensure_venv
cd "$ROOT"

echo "==> ruff"
"$VENV/bin/ruff" check csf demo tests scripts
"$VENV/bin/ruff" format --check csf demo tests scripts
echo "==> mypy --strict"
"$VENV/bin/mypy" --strict csf demo/providers.py demo/__main__.py

slow="${CI:-}"
pytest_args=()
for arg in "$@"; do
  if [ "$arg" = "--slow" ]; then slow=1; else pytest_args+=("$arg"); fi
done

echo "==> pytest (default suite)"
"$PY" -m pytest -m "not slow" "${pytest_args[@]}"

if [ -n "$slow" ]; then
  echo "==> pytest (slow: fault injection and soak)"
  status=0
  "$PY" -m pytest -m slow || status=$?
  # Exit 5 means no test is marked slow yet: nothing failed.
  [ "$status" = 0 ] || [ "$status" = 5 ] || exit "$status"
fi
