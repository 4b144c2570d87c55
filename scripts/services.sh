#!/usr/bin/env bash
# Makes sure what the service needs is installed and running: Node 20, npm packages, NATS with
# JetStream and PostgreSQL (and, for the tests, ClickHouse and chromium). Installs from the distribution's packages when it may (root with apt);
# otherwise says exactly what to install. Sourced by run.sh and test.sh.
set -euo pipefail

say() { printf '\033[1m[mps]\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_updated=""
apt_install() {
  can_apt || die "missing $1: install it with 'sudo apt-get install $1' and run this again"
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  say "installing $1 from the distribution's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" "$2" && return 0; sleep 0.1; done
  return 1
}

ensure_node() {
  command -v node >/dev/null 2>&1 || die "Node.js 20 is required: install it (https://nodejs.org or 'apt-get install nodejs npm')"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" = 20 ] || die "Node.js 20 is required (the uWebSockets.js build this project uses is for Node 20); found $(node --version)"
}

ensure_packages() {
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    # `npm install` with the committed lockfile installs exactly its versions. Not `npm ci`: it
    # refuses a lockfile without the optional platform packages (rollup's) that a registry mirror
    # may not carry, although nothing here needs them.
    say "installing npm packages"
    npm install --no-audit --no-fund --loglevel=error
  fi
}

ensure_nats() {
  local url="${NATS_URL:-nats://127.0.0.1:4222}" hostport host port
  hostport="${url#nats://}"; hostport="${hostport%%,*}"; host="${hostport%:*}"; port="${hostport##*:}"
  port_open "$host" "$port" && return 0
  case "$host" in 127.0.0.1|localhost) ;; *) die "NATS is not reachable at $url";; esac
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || apt_install nats-server
  local bin; bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  local store="${NATS_STORE_DIR:-/var/lib/nats-server}"
  [ -w "$(dirname "$store")" ] || store="$PWD/data/nats"
  mkdir -p "$store"
  say "starting nats-server with JetStream on $host:$port (store $store)"
  if command -v start-stop-daemon >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec "$bin" -- -a 127.0.0.1 -p "$port" -js -sd "$store" -l "$store/nats-server.log"
  else
    nohup "$bin" -a 127.0.0.1 -p "$port" -js -sd "$store" -l "$store/nats-server.log" >/dev/null 2>&1 &
  fi
  wait_port 127.0.0.1 "$port" || die "nats-server did not start; see $store/nats-server.log"
}

ensure_postgres() {
  local url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mps}"
  local rest="${url#*://}"; rest="${rest#*@}"; local hostport="${rest%%/*}"
  local host="${hostport%:*}" port="${hostport##*:}"
  [ "$host" = "$hostport" ] && port=5432
  if ! port_open "$host" "$port"; then
    case "$host" in 127.0.0.1|localhost) ;; *) die "PostgreSQL is not reachable at $host:$port";; esac
    command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
    local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
    [ -n "$version" ] || die "PostgreSQL is installed but has no cluster: run 'pg_createcluster 15 main'"
    say "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_port "$host" "$port" || die "PostgreSQL did not start on port $port"
  fi
  local db="${url##*/}"; db="${db%%\?*}"
  local admin="${url%/*}/postgres"
  if ! node -e '
    const pg = require("pg");
    const c = new pg.Client({ connectionString: process.argv[1] });
    c.connect().then(() => c.end()).catch((e) => { console.error(e.message); process.exit(1); });
  ' "$url" 2>/dev/null; then
    say "creating database $db"
    node -e '
      const pg = require("pg");
      const c = new pg.Client({ connectionString: process.argv[1] });
      c.connect()
        .then(() => c.query(`CREATE DATABASE "${process.argv[2]}"`))
        .then(() => c.end())
        .catch((e) => { console.error("cannot create the database: " + e.message + " (check DATABASE_URL; this expects trust or password auth for its user)"); process.exit(1); });
    ' "$admin" "$db"
  fi
}

# The analytics tests on a real ClickHouse server start their own clickhouse-server (Debian's
# 18.16) on free ports; only the binary is needed. Without apt they are skipped, saying so.
ensure_clickhouse() {
  if command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ]; then return 0; fi
  if can_apt; then
    apt_install clickhouse-server
  else
    say "clickhouse-server is missing: the ClickHouse server tests will be skipped (install it with 'sudo apt-get install clickhouse-server')"
  fi
}

# The console's browser tests (test/console.test.ts) drive Debian's chromium headless through
# playwright-core: installed from the distribution's packages when missing (root with apt), never
# downloaded by a test tool. Without it those tests fail, saying what to install.
ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then return 0; fi
  if can_apt; then
    apt_install chromium
  else
    say "chromium is missing: the console's browser tests will fail (install it with 'sudo apt-get install chromium')"
  fi
}

# make cluster (scripts/cluster.sh) and its test put HAProxy in front of the gateways and control
# planes: installed from the distribution's packages when missing (root with apt); otherwise this
# stops, saying what to install.
ensure_haproxy() {
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || apt_install haproxy
}

# The web console's static files (console/dist/public), built with Vite; the control plane serves them at /console/.
build_console() {
  say "building the web console"
  npm run --silent build --workspace @mps/console -- --logLevel warn
}

ensure_all() {
  ensure_node
  ensure_packages
  ensure_nats
  ensure_postgres
}
