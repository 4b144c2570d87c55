#!/usr/bin/env bash
# make soak: the reliability and security suite (test/reliability, issue #10) at full size, on
# loopback, bounded by RELIABILITY_TIMEOUT_S (3 hours by default). Writes bench/results/reliability.json.
# RELIABILITY_SCALE=ci runs it at the size `make test` does; RELIABILITY_FILTER=frames,tokens runs those
# files only and updates their scenarios in the results. docs/reliability.md has the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_all
ensure_clickhouse
say "reliability suite (docs/reliability.md; RELIABILITY_SCALE, full by default)"
npm run --silent bench -- reliability
