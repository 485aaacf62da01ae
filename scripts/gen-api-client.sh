#!/usr/bin/env bash
# Regenerate the console's typed API client from the server's OpenAPI schema.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/siyu openapi --out web/openapi.json
(cd web && npx --no-install openapi-typescript openapi.json -o src/api/schema.d.ts --silent)
