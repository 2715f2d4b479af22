#!/usr/bin/env bash
# The benchmarks: load balancers, CSF next to raw grpc.aio, registry scale; then charts.
# Pass --quick for a short run. Results: benchmarks/results/*.json and *.png.
source "$(dirname "$0")/_setup.sh"
ensure_zookeeper
ensure_venv
"$PY" -m pip install -q --disable-pip-version-check -e "$ROOT[bench]"
cd "$ROOT"
# The benchmarks run as scripts and import demo/, which is not installed: the root comes first.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PY" benchmarks/bench_lb.py "$@"
"$PY" benchmarks/bench_overhead.py "$@"
"$PY" benchmarks/bench_registry.py "$@"
"$PY" benchmarks/charts.py
