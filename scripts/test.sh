#!/usr/bin/env bash
# Install test dependencies and run the whole suite: lint, types, import contracts, the API
# client's freshness, and the tests (SQLite always; PostgreSQL when SIYU_TEST_DATABASE_URL is
# set; API fuzzing; browser tests in the system Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

bash scripts/setup.sh --dev
export SIYU_CHROMIUM="${SIYU_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$SIYU_CHROMIUM" ]; then
  echo "installing Chromium for the browser tests" >&2
  as_root apt-get update -qq && as_root apt-get install -y -qq chromium
fi

echo "== ruff"; .venv/bin/ruff check src tests bench && .venv/bin/ruff format --check src tests bench
echo "== mypy"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports
echo "== API client is generated from the current OpenAPI schema"
tmp=$(mktemp -d)
.venv/bin/siyu openapi --out "$tmp/openapi.json"
(cd web && npx --no-install openapi-typescript "$tmp/openapi.json" -o "$tmp/schema.d.ts" --silent)
if ! cmp -s "$tmp/openapi.json" web/openapi.json || ! cmp -s "$tmp/schema.d.ts" web/src/api/schema.d.ts; then
  echo "web/openapi.json or web/src/api/schema.d.ts is stale: run 'bash scripts/gen-api-client.sh'" >&2
  exit 1
fi
echo "== tests (database backends: sqlite${SIYU_TEST_DATABASE_URL:+, postgresql})"
.venv/bin/python -m pytest -q "$@"
