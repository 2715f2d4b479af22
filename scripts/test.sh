#!/usr/bin/env bash
# Lint, type-check and test CSF. --slow adds the slow tests, --mutants the two mutation
# suites (behaviour mutants and mutmut); CI runs all of it.
source "$(dirname "$0")/_setup.sh"
ensure_zookeeper
ensure_command chromium chromium  # the console's browser tests
ensure_venv
cd "$ROOT"

echo "==> ruff"
"$VENV/bin/ruff" check csf demo tests scripts benchmarks
"$VENV/bin/ruff" format --check csf demo tests scripts benchmarks
echo "==> mypy --strict"
"$VENV/bin/mypy" --strict csf demo/providers.py demo/__main__.py demo/gateway.py demo/console.py scripts/mutants.py scripts/mutmut_score.py

# One pytest run, so its closing line counts every test: the slow ones too when asked.
# CI (or --mutants) first runs the behaviour-mutation suite (each README promise broken
# on purpose must fail a test) and mutmut on the pure-logic modules (score at least 80%).
# They run before pytest so that its closing line comes last (then only the uvloop run).
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

# uvloop, CSF's opt-in event loop (the extra): tests/test_uvloop.py and the last run need it.
"$PY" -c "import uvloop" 2>/dev/null \
  || "$PY" -m pip install -q --disable-pip-version-check -e "$ROOT[dev,gateway,console,reflection,uvloop]"

if [ -n "$mutants" ]; then
  echo "==> behaviour mutants and mutmut (scripts/mutants.py --mutmut)"
  "$PY" scripts/mutants.py --mutmut
fi

echo "==> pytest ${marks[*]:-(all, slow included)}"
"$PY" -m pytest "${marks[@]}" "${pytest_args[@]}"

# Again on uvloop's loop (CSF_TEST_LOOP, tests/conftest.py), for an application that opts
# in: the tests of calls end to end (call objects, the four kinds, deadlines, retries,
# failover, drain) and of the registry (registration, watches, sessions lost, ZooKeeper
# away), where the loop's scheduling, timers, sockets and signals matter. About a minute.
uvloop_tests=(
  tests/test_calls.py tests/test_call_objects.py tests/test_call_object_races.py
  tests/test_streams_governed.py tests/test_deadlines.py tests/test_retries_live.py
  tests/test_failover_faults.py tests/test_shutdown.py tests/test_registration.py
  tests/registry/test_zookeeper_registration.py tests/registry/test_provider_watch.py
  tests/test_session_loss.py tests/test_zookeeper_outage.py tests/test_uvloop.py
)
echo "==> pytest -m \"not slow\" on uvloop: ${#uvloop_tests[@]} files of calls and the registry"
CSF_TEST_LOOP=uvloop "$PY" -m pytest -m "not slow" "${uvloop_tests[@]}"
