#!/usr/bin/env bash
# make cluster: the service scaled out on this machine, on loopback only. A three-node NATS cluster
# with JetStream (its own ports and store), a fresh PostgreSQL database, several gateway processes
# and two control planes, analytics and a vendor sender, and HAProxy in front: one frontend for the
# API (balancing the control planes, checked on /healthz) and one for device WebSockets (balancing
# the gateways, checked on their admin port's /readyz, so a draining gateway leaves the rotation).
# Prints the URLs; Ctrl-C stops everything and drops the database. docs/operations.md, "Running a
# cluster", says what each knob does.
#
# Knobs: CLUSTER_GATEWAYS (3), CLUSTER_CONTROL_PLANES (2), CLUSTER_PORT_BASE (8200: ports BASE to
# BASE+82 are used, see below), CLUSTER_DIR (a new temporary folder, removed on stop), CLUSTER_RUN_FROM
# (dist: build first; src: run the TypeScript sources through tsx, as the tests do), CLUSTER_MAX_S
# (0: run until stopped), CLUSTER_PARENT_PID (stop when that process is gone), NATS_REPLICAS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
[ -f .env ] && set -a && source .env && set +a

gateways="${CLUSTER_GATEWAYS:-3}"
control_planes="${CLUSTER_CONTROL_PLANES:-2}"
base="${CLUSTER_PORT_BASE:-8200}"
run_from="${CLUSTER_RUN_FROM:-dist}"
max_s="${CLUSTER_MAX_S:-0}"
parent="${CLUSTER_PARENT_PID:-}"
[ "$gateways" -ge 1 ] && [ "$gateways" -le 20 ] || die "CLUSTER_GATEWAYS must be 1 to 20"
[ "$control_planes" -ge 1 ] && [ "$control_planes" -le 10 ] || die "CLUSTER_CONTROL_PLANES must be 1 to 10"
case "$run_from" in dist|src) ;; *) die "CLUSTER_RUN_FROM must be dist or src";; esac

# The port plan, all on 127.0.0.1.
api_port=$base                          # HAProxy: the push API and the console
device_port=$((base + 1))               # HAProxy: device WebSockets
stats_port=$((base + 2))                # HAProxy: its stats page
cp_port() { echo $((base + 10 + $1)); } # control planes
gw_port() { echo $((base + 20 + $1)); } # gateways (each its own port, so HAProxy can tell them apart)
gw_admin() { echo $((base + 40 + $1)); }
nats_port() { echo $((base + 60 + $1)); }
nats_route() { echo $((base + 70 + $1)); }
nats_monitor() { echo $((base + 80 + $1)); }

ensure_node
ensure_packages
ensure_haproxy
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || apt_install nats-server
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
haproxy_bin=$(command -v haproxy || echo /usr/sbin/haproxy)

all_ports=("$api_port" "$device_port" "$stats_port")
for i in $(seq 0 $((control_planes - 1))); do all_ports+=("$(cp_port "$i")"); done
for i in $(seq 0 $((gateways - 1))); do all_ports+=("$(gw_port "$i")" "$(gw_admin "$i")"); done
for i in 0 1 2; do all_ports+=("$(nats_port "$i")" "$(nats_route "$i")" "$(nats_monitor "$i")"); done
for p in "${all_ports[@]}"; do
  port_open 127.0.0.1 "$p" && die "port $p is taken: choose other ports with CLUSTER_PORT_BASE (this uses $base to $((base + 82)))"
done

if [ "$run_from" = dist ]; then
  say "building"
  npx tsc -b
  build_console
  node_flags=()
  entry() { echo "$1/dist/$2.js"; }
else
  node_flags=(--conditions=source --import tsx)
  entry() { echo "$1/src/$2.ts"; }
fi
# The command line of a service's entry point (a plain command, so that `start` gets its pid).
node_run() { node "${node_flags[@]}" "$(entry "$1" "$2")"; }

own_dir=""
if [ -z "${CLUSTER_DIR:-}" ]; then
  CLUSTER_DIR=$(mktemp -d /tmp/mps-cluster.XXXXXX); own_dir=1
fi
mkdir -p "$CLUSTER_DIR/logs"
dir=$(cd "$CLUSTER_DIR" && pwd)

base_db="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mps}"
db_name="mps_cluster_$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
export DATABASE_URL="${base_db%/*}/$db_name"
nats_urls=""
for i in 0 1 2; do nats_urls+="${nats_urls:+,}nats://127.0.0.1:$(nats_port "$i")"; done
export NATS_URL="$nats_urls"
export NATS_PREFIX="${NATS_PREFIX:-mps}"
export DATA_DIR="$dir"
export MASTER_KEY="${MASTER_KEY:-$(node -p 'require("node:crypto").randomBytes(32).toString("base64")')}"

names=(); pids=(); reported=()
start() { # NAME COMMAND...: runs it in the background, output in logs/NAME.log
  local name=$1; shift
  "$@" >"$dir/logs/$name.log" 2>&1 &
  names+=("$name"); pids+=($!); reported+=("")
}
alive() { kill -0 "$1" 2>/dev/null; }
pid_of() { local i; for i in "${!names[@]}"; do [ "${names[$i]}" = "$1" ] && echo "${pids[$i]}"; done; }

drop_database() {
  node -e '
    const pg = require("pg");
    const c = new pg.Client({ connectionString: process.argv[1] });
    c.connect().then(() => c.query(`DROP DATABASE IF EXISTS "${process.argv[2]}" WITH (FORCE)`)).then(() => c.end())
      .catch((e) => { console.error("could not drop the database " + process.argv[2] + ": " + e.message); process.exit(1); });
  ' "${base_db%/*}/postgres" "$db_name" || true
}

# Stops a group of pids with a signal, then kills what is left after `grace` seconds.
stop_pids() {
  local signal=$1 grace=$2; shift 2
  [ $# -gt 0 ] || return 0
  kill "-$signal" "$@" 2>/dev/null || true
  local deadline=$((SECONDS + grace)) p left
  while [ $SECONDS -lt $deadline ]; do
    left=0; for p in "$@"; do alive "$p" && left=1; done
    [ $left = 0 ] && break
    sleep 0.2
  done
  kill -KILL "$@" 2>/dev/null || true
}

stopped=""
stop() {
  [ -n "$stopped" ] && return; stopped=1
  trap - INT TERM EXIT
  # Finish the clean-up even if the terminal or a pipe reading our output is gone.
  trap '' PIPE HUP
  set +e
  say "stopping the cluster"
  local services=() gws=() nats=() i
  for i in "${!names[@]}"; do
    case "${names[$i]}" in
      nats-*) nats+=("${pids[$i]}") ;;
      gateway-*) gws+=("${pids[$i]}") ;;
      *) services+=("${pids[$i]}") ;;
    esac
  done
  # Gateways close at once on SIGINT: the whole cluster goes, so there is nowhere to drain to.
  kill -INT "${gws[@]}" 2>/dev/null || true
  stop_pids TERM 15 "${services[@]}" "${gws[@]}"
  stop_pids TERM 10 "${nats[@]}"
  wait 2>/dev/null || true
  drop_database
  if [ -n "$own_dir" ]; then rm -rf "$dir"; else rm -rf "$dir"/nats "$dir"/chdb; fi
  say "stopped"
}
# Ctrl-C or SIGTERM is how a cluster is meant to end: everything is stopped, and the exit is clean.
trap 'stop; exit 0' INT TERM
trap stop EXIT

# --- PostgreSQL: a fresh database, migrated, with the demo app (its credentials point at HAProxy),
# made while NATS starts.
ensure_postgres
API_PORT=$api_port GATEWAY_PORT=$device_port node_run control-plane demo >"$dir/logs/demo.log" 2>&1 &
demo_pid=$!

# --- NATS: three nodes with JetStream, routes between all of them ------------------------------
routes=""
for i in 0 1 2; do routes+="${routes:+, }nats-route://127.0.0.1:$(nats_route "$i")"; done
for i in 0 1 2; do
  mkdir -p "$dir/nats/n$((i + 1))"
  cat >"$dir/nats/n$((i + 1)).conf" <<CONF
server_name: n$((i + 1))
listen: 127.0.0.1:$(nats_port "$i")
http: 127.0.0.1:$(nats_monitor "$i")
max_payload: 1MB
jetstream {
  store_dir: "$dir/nats/n$((i + 1))"
  max_memory_store: 256MB
  max_file_store: 4GB
}
cluster {
  name: mps_local
  listen: 127.0.0.1:$(nats_route "$i")
  routes: [ $routes ]
}
CONF
  start "nats-$((i + 1))" "$nats_bin" -c "$dir/nats/n$((i + 1)).conf"
done
for i in 0 1 2; do
  for _ in $(seq 1 300); do port_open 127.0.0.1 "$(nats_port "$i")" && break; sleep 0.1; done
  port_open 127.0.0.1 "$(nats_port "$i")" || die "nats-server n$((i + 1)) did not start within 30 s: $(tail -n 5 "$dir/logs/nats-$((i + 1)).log")"
done
say "waiting for the NATS cluster to elect a JetStream leader"
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$(nats_monitor 0)/jsz" | grep -q '"leader"' && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$(nats_monitor 0)/jsz" | grep -q '"leader"' || die "the NATS cluster elected no JetStream leader; see $dir/logs/nats-*.log"

# Streams and the nonce bucket with NATS_REPLICAS copies before any service creates them with one.
NATS_REPLICAS="${NATS_REPLICAS:-3}" node "${node_flags[@]}" infra/nats/provision.mjs >"$dir/logs/provision.log" 2>&1 \
  || die "could not create the replicated streams: $(tail -n 3 "$dir/logs/provision.log")"


wait "$demo_pid" || die "could not create the demo app: $(cat "$dir/logs/demo.log")"

# --- the services, all at once (the database is migrated, the streams exist) ----------------------
for i in $(seq 0 $((control_planes - 1))); do
  API_HOST=127.0.0.1 API_PORT=$(cp_port "$i") start "control-plane-$((i + 1))" node "${node_flags[@]}" "$(entry control-plane main)"
done
for i in $(seq 0 $((gateways - 1))); do
  # Behind HAProxy every device comes from its address: the per-address limit would cap a gateway.
  GATEWAY_HOST=127.0.0.1 GATEWAY_PORT=$(gw_port "$i") GATEWAY_ADMIN_PORT=$(gw_admin "$i") \
    GATEWAY_MAX_CONNECTIONS_PER_IP="${GATEWAY_MAX_CONNECTIONS_PER_IP:-1000000}" \
    start "gateway-$((i + 1))" node "${node_flags[@]}" "$(entry gateway main)"
done
start analytics node "${node_flags[@]}" "$(entry analytics main)"
start sender node "${node_flags[@]}" "$(entry sender main)"

# --- HAProxy ---------------------------------------------------------------------------------------
{
  cat <<CONF
global
  maxconn 9000
  log stderr format raw local0 notice

defaults
  log global
  option dontlognull
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout check 2s
  retries 3
  option redispatch 1

frontend api
  mode http
  bind 127.0.0.1:$api_port
  default_backend control_planes

backend control_planes
  mode http
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
  default-server inter 1s fall 2 rise 1
CONF
  for i in $(seq 0 $((control_planes - 1))); do echo "  server cp$((i + 1)) 127.0.0.1:$(cp_port "$i") check"; done
  cat <<CONF

# Devices: plain TCP, WebSockets pass through. Long timeouts: devices ping every half of the
# gateway's idle timeout (60 s by default). leastconn spreads long-lived connections evenly.
frontend devices
  mode tcp
  bind 127.0.0.1:$device_port
  timeout client 10m
  default_backend gateways

backend gateways
  mode tcp
  balance leastconn
  timeout server 10m
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 500 fall 2 rise 1
CONF
  for i in $(seq 0 $((gateways - 1))); do echo "  server gw$((i + 1)) 127.0.0.1:$(gw_port "$i") check port $(gw_admin "$i")"; done
  cat <<CONF

listen stats
  mode http
  bind 127.0.0.1:$stats_port
  stats enable
  stats uri /
  stats refresh 5s
CONF
} >"$dir/haproxy.cfg"
"$haproxy_bin" -c -q -f "$dir/haproxy.cfg" || die "HAProxy refused its configuration $dir/haproxy.cfg"
start haproxy "$haproxy_bin" -db -f "$dir/haproxy.cfg"

# Ready when HAProxy sees every control plane and gateway up (their health checks passed).
backends_up() {
  curl -sf "http://127.0.0.1:$stats_port/;csv" |
    awk -F, '($1 == "control_planes" || $1 == "gateways") && $2 != "BACKEND" && $18 == "UP" { n++ } END { print n + 0 }'
}
deadline=$((SECONDS + 180))
until [ "$(backends_up 2>/dev/null || echo 0)" = $((gateways + control_planes)) ]; do
  for i in "${!names[@]}"; do alive "${pids[$i]}" || die "${names[$i]} exited while starting; see $dir/logs/${names[$i]}.log"; done
  [ $SECONDS -lt $deadline ] || die "not every backend came up within 180 s; see $dir/logs and http://127.0.0.1:$stats_port/"
  sleep 0.5
done

# What the tests and the bench read: every process, port and URL of this cluster.
{
  printf '{\n  "dir": "%s",\n  "database": "%s",\n  "nats_urls": "%s",\n' "$dir" "$DATABASE_URL" "$NATS_URL"
  printf '  "api_url": "http://127.0.0.1:%s",\n  "device_url": "ws://127.0.0.1:%s/v1/device",\n  "stats_url": "http://127.0.0.1:%s/",\n' "$api_port" "$device_port" "$stats_port"
  printf '  "credentials": "%s/demo.json",\n  "processes": [\n' "$dir"
  for i in "${!names[@]}"; do
    name=${names[$i]}; extra=""
    case "$name" in
      gateway-*) n=$((${name#gateway-} - 1)); extra=", \"port\": $(gw_port "$n"), \"admin_port\": $(gw_admin "$n")" ;;
      control-plane-*) n=$((${name#control-plane-} - 1)); extra=", \"port\": $(cp_port "$n")" ;;
      nats-*) n=$((${name#nats-} - 1)); extra=", \"port\": $(nats_port "$n"), \"monitor_port\": $(nats_monitor "$n")" ;;
    esac
    printf '    {"name": "%s", "pid": %s%s}%s\n' "$name" "${pids[$i]}" "$extra" "$([ "$i" -lt $((${#names[@]} - 1)) ] && echo ,)"
  done
  printf '  ]\n}\n'
} >"$dir/cluster.json.tmp"
mv "$dir/cluster.json.tmp" "$dir/cluster.json"

app=$(node -p 'require(process.argv[1]).app' "$dir/demo.json")
cat >&2 <<MSG

  push API (HAProxy -> $control_planes control planes)   http://127.0.0.1:$api_port   (console: http://localhost:$api_port/console/)
  devices (HAProxy -> $gateways gateways)          ws://127.0.0.1:$device_port/v1/device
  HAProxy stats                               http://127.0.0.1:$stats_port/
  gateway metrics                             http://127.0.0.1:$(gw_admin 0)/metrics ... one admin port per gateway
  NATS cluster (JetStream, replicas ${NATS_REPLICAS:-3})        $NATS_URL   (monitoring: http://127.0.0.1:$(nats_monitor 0)/ ...)
  database                                    $DATABASE_URL (dropped on stop)
  demo app $app, credentials                  $dir/demo.json
  processes, ports and logs                   $dir/cluster.json, $dir/logs/

  Simulate a device and push to it (in other terminals, from this folder):

    npx mps device simulate --credentials $dir/demo.json
    npx mps push --credentials $dir/demo.json --device DEVICE_ID --title Hello

  Ctrl-C stops everything.

MSG

# A lost process is reported, not fatal: a cluster runs on without one gateway or NATS node.
started=$SECONDS
while sleep 1; do
  for i in "${!names[@]}"; do
    if [ -z "${reported[$i]}" ] && ! alive "${pids[$i]}"; then
      reported[$i]=1
      say "${names[$i]} (pid ${pids[$i]}) exited; the cluster runs on without it (log: $dir/logs/${names[$i]}.log)"
    fi
  done
  if [ "$max_s" -gt 0 ] && [ $((SECONDS - started)) -ge "$max_s" ]; then say "CLUSTER_MAX_S ($max_s s) reached"; break; fi
  if [ -n "$parent" ] && ! alive "$parent"; then say "the parent process $parent is gone"; break; fi
done
