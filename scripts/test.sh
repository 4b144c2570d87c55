#!/usr/bin/env bash
# make test: installs and starts what is missing, type-checks, then runs the whole vitest suite
# against the real NATS and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_all
ensure_clickhouse
say "type-checking"
npx tsc -b
npx tsc -p tsconfig.test.json
say "running the suite"
npx vitest run "$@"
