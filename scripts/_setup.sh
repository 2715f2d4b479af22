# Sourced by demo.sh and test.sh: make a fresh machine ready. Safe to run again.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="${CSF_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

# The Debian `zookeeper` package (and the Java it needs), for the local ZooKeeper.
ensure_zookeeper() {
  if [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; then
    return
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "==> installing the Debian package zookeeper"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq zookeeper >/dev/null
}

# A Debian package, when `command` is missing (wrk, for the gateway's benchmark).
ensure_command() {
  local command=$1 package=$2
  command -v "$command" >/dev/null 2>&1 && return
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "==> installing the Debian package $package"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null
}

# A virtual environment with CSF, its gateway and its dev tools; reinstalled when pyproject.toml changes.
ensure_venv() {
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "CSF needs Python 3.11 or newer as python3" >&2; exit 1; }
  [ -x "$PY" ] || python3 -m venv "$VENV"
  local stamp="$VENV/.csf-installed"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "==> installing CSF and its dev tools into $VENV"
    "$PY" -m pip install -q --disable-pip-version-check -e "$ROOT[dev,gateway,console,reflection]"
    touch "$stamp"
  fi
}
