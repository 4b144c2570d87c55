#!/usr/bin/env bash
# make test: installs and starts what is missing, type-checks, then runs the whole vitest suite
# against the real NATS and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_all
ensure_clickhouse
ensure_chromium
say "type-checking"
npx tsc -b
npx tsc -p tsconfig.test.json
# The console's browser test builds the console from its sources itself; this checks the build
# that make run serves.
build_console
say "running the suite"
npx vitest run "$@"
# The benchmarks at a tiny size (about 2 minutes), with the whole suite only.
if [ $# -eq 0 ]; then
  say "bench smoke run"
  make --no-print-directory bench-smoke
fi
