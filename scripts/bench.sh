#!/usr/bin/env bash
# The benchmarks: load balancers, CSF next to raw grpc.aio (on asyncio's loop, then on
# uvloop's), registry scale, SET routing, the gateway (driven by wrk);
# then charts.
# Pass --quick for a short run. Results: benchmarks/results/*.json and *.png.
source "$(dirname "$0")/_setup.sh"
ensure_zookeeper
ensure_command wrk wrk
ensure_venv
"$PY" -m pip install -q --disable-pip-version-check -e "$ROOT[bench,gateway,console,uvloop]"
cd "$ROOT"
# The benchmarks run as scripts and import demo/, which is not installed: the root comes first.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PY" benchmarks/bench_lb.py "$@"
"$PY" benchmarks/bench_overhead.py "$@"
# On uvloop: 1 and 64 in flight only, to keep the whole run within half an hour.
"$PY" benchmarks/bench_overhead.py --loop uvloop --quick --rounds 3 --seconds 2 "$@"
# The registry at 100 consumers, then at 1,000 (20 processes of 50): the chart puts them side by side.
"$PY" benchmarks/bench_registry.py --consumers 100 --processes 10 \
  --out benchmarks/results/bench_registry_100.json "$@"
"$PY" benchmarks/bench_registry.py "$@"
# SET routing: shares, failure isolation, moves under load, the SET filter's cost.
"$PY" benchmarks/bench_set.py "$@"
# The gateway beside a bare endpoint of its HTTP stack and a direct CSF call, driven by wrk.
"$PY" benchmarks/bench_gateway.py "$@"
# The console's pages with 2,000 services, and a CLI change reaching an open page.
"$PY" benchmarks/bench_console.py "$@"
"$PY" benchmarks/charts.py
