#!/usr/bin/env bash
# Set everything up and run the demo brand at http://127.0.0.1:8000 (Ctrl-C to stop).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SIYU_DATABASE_URL="${SIYU_DATABASE_URL:-sqlite:///var/siyu.db}"
.venv/bin/siyu migrate
.venv/bin/siyu demo seed --customers "${SIYU_DEMO_CUSTOMERS:-5000}" --seed 1
.venv/bin/siyu demo login
exec .venv/bin/siyu serve
