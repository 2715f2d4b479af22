#!/usr/bin/env bash
# The demo: a ZooKeeper (local unless CSF_ZK is set), three providers, a consumer and
# the gateway.
source "$(dirname "$0")/_setup.sh"
[ -n "${CSF_ZK:-}" ] || ensure_zookeeper
ensure_venv
cd "$ROOT"
exec "$PY" -m demo "$@"
