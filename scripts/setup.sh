#!/usr/bin/env bash
# Prepare a checkout: Python virtualenv with siyu installed, and the console built.
#   bash scripts/setup.sh          # runtime only
#   bash scripts/setup.sh --dev    # plus test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY' || { echo "siyu needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    echo "installing python3-venv" >&2
    as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv
    rm -rf .venv && "$PYTHON" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".${extras}"

command -v npm >/dev/null || { echo "siyu's console needs Node.js 20+ with npm" >&2; exit 1; }
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent >/dev/null)
echo "setup done: .venv ready, console built in web/dist"
