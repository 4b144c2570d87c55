#!/usr/bin/env bash
# make run: installs and starts what is missing, builds (the web console too), creates the demo
# app and a console operator for it on first run, then runs gateways (one per core, sharing the
# port), the control plane, analytics, the vendor sender and a demo device.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
[ -f .env ] && set -a && source .env && set +a
ensure_all

say "building"
npx tsc -b
build_console

export DATA_DIR="${DATA_DIR:-$PWD/data}"
mkdir -p "$DATA_DIR"
node control-plane/dist/demo.js
# The console's operator for the demo app: CONSOLE_ADMIN_EMAIL (admin@localhost), its generated
# password in $DATA_DIR/console-admin.json (or CONSOLE_ADMIN_PASSWORD when given).
operator=$(node control-plane/dist/operator-cli.js bootstrap)

gateways="${GATEWAY_PROCESSES:-$(nproc)}"
pids=()
stop() {
  trap - INT TERM EXIT
  say "stopping"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

node control-plane/dist/main.js & pids+=($!)
admin_base="${GATEWAY_ADMIN_PORT:-9091}"
for i in $(seq 0 $((gateways - 1))); do
  GATEWAY_ADMIN_PORT=$((admin_base + i)) node gateway/dist/main.js & pids+=($!)
done
node analytics/dist/main.js & pids+=($!)
node sender/dist/main.js & pids+=($!)

api_port="${API_PORT:-8080}"; gw_port="${GATEWAY_PORT:-8081}"
wait_port 127.0.0.1 "$api_port" || die "the control plane did not start"
wait_port 127.0.0.1 "$gw_port" || die "the gateway did not start"
node sdk/dist/demo-device.js & pids+=($!)
for _ in $(seq 1 50); do [ -f "$DATA_DIR/demo-device.json" ] && break; sleep 0.1; done
device=$(node -p 'require(process.argv[1]).device' "$DATA_DIR/demo-device.json" 2>/dev/null || echo DEVICE_ID)

cat >&2 <<MSG

  control plane (push API)  http://127.0.0.1:$api_port   (reference: /reference, OpenAPI: /openapi.json)
  web console               http://localhost:$api_port/console/
                            sign in as $operator
  gateway (devices)         ws://127.0.0.1:$gw_port/v1/device   ($gateways processes)
  gateway metrics           http://127.0.0.1:$admin_base/metrics ... one admin port per gateway process
  demo credentials          $DATA_DIR/demo.json

  Push a message to the demo device (in another terminal, from this folder):

    npx mps push --device $device --title Hello --body 'from mps'

  and see where it is:   npx mps message MESSAGE_ID
  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
say "a process exited; stopping the rest"
