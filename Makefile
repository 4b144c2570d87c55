.PHONY: run test build clean bench bench-smoke

# Start the whole service: NATS, PostgreSQL, gateways, control plane, analytics and a demo device.
run:
	@scripts/run.sh

# Run the whole suite (unit and integration tests against the real NATS and PostgreSQL).
test:
	@scripts/test.sh

# The service scaled out on this machine: a 3-node NATS cluster, several gateways and two control
# planes behind HAProxy, analytics and a sender (scripts/cluster.sh; docs/operations.md says more).
.PHONY: cluster
cluster:
	@scripts/cluster.sh

build:
	@npx tsc -b

clean:
	rm -rf */dist

# Every benchmark in sequence at its default size (about an hour on 2 cores), then
# bench/results/REPORT.md with its plots. bench/README.md says what each one measures. Each waits
# (up to BENCH_SETTLE_S) for the machine to be quiet first; connections goes last, since a million
# sockets take a while to close.
BENCHES := $(filter-out connections run report reliability %.test,$(basename $(notdir $(wildcard bench/src/*.ts)))) connections
bench:
	@bash -c 'source scripts/services.sh && ensure_all && { [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || apt_install mosquitto; } && { [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null || apt_install pgbouncer; }'
	@set -e; for name in $(BENCHES); do printf '\n\033[1m[mps]\033[0m bench %s\n' "$$name"; BENCH_SETTLE_S=$${BENCH_SETTLE_S:-120} npm run --silent bench -- "$$name"; done
	@npm run --silent bench -- report

# fanout, latency, peers and api at a tiny size, results and report in a temporary folder (the
# committed bench/results stay as they are). connections and analytics have their smoke runs in the
# vitest suite (bench/src/*.test.ts), and vendor and loss theirs (test/vendor*.test.ts, test/loss.test.ts).
bench-smoke:
	@set -e; dir=$$(mktemp -d /tmp/mps-bench-smoke.XXXXXX); trap 'rm -rf "$$dir"' EXIT; export BENCH_RESULTS_DIR="$$dir"; \
	BENCH_FANOUT_DEVICES=300 BENCH_FANOUT_LARGE_DEVICES=0 BENCH_FANOUT_REPEAT=1 BENCH_FANOUT_OFFERED=3100 BENCH_FANOUT_TARGETED_PER_S=100 BENCH_FANOUT_STREAM_S=2 BENCH_TIMEOUT_S=120 \
	  npm run --silent bench -- fanout >"$$dir/fanout.log" 2>&1 || { cat "$$dir/fanout.log"; exit 1; }; tail -n 1 "$$dir/fanout.log"; \
	BENCH_LATENCY_DEVICES=20 BENCH_LATENCY_RATES=20,50 BENCH_LATENCY_SECONDS=1 BENCH_LATENCY_DRAIN_S=5 BENCH_TIMEOUT_S=120 \
	  npm run --silent bench -- latency >"$$dir/latency.log" 2>&1 || { cat "$$dir/latency.log"; exit 1; }; tail -n 1 "$$dir/latency.log"; \
	BENCH_PEERS_DEVICES=200 BENCH_PEERS_REPEAT=1 BENCH_PEERS_STREAM_OFFERED=4000 BENCH_PEERS_STREAM_S=1 BENCH_PEERS_SETTLE_MS=200 BENCH_TIMEOUT_S=120 \
	  npm run --silent bench -- peers >"$$dir/peers.log" 2>&1 || { cat "$$dir/peers.log"; exit 1; }; tail -n 1 "$$dir/peers.log"; \
	BENCH_API_SECONDS=1 BENCH_API_CONNECTIONS=4 \
	  npm run --silent bench -- api >"$$dir/api.log" 2>&1 || { cat "$$dir/api.log"; exit 1; }; tail -n 1 "$$dir/api.log"; \
	npm run --silent bench -- report; \
	for name in fanout latency peers api; do test -s "$$dir/$$name.json" || { echo "bench-smoke: no $$name.json"; exit 1; }; done; \
	for png in latency fanout peers; do test -s "$$dir/$$png.png" || { echo "bench-smoke: no $$png.png"; exit 1; }; done; \
	node -e 'const [dir] = process.argv.slice(1); for (const [name, key] of [["fanout", "deliveries_per_second"], ["latency", "p50_ms"], ["peers", "ours_stream_deliveries_per_second"], ["api", "signed_pushes_per_second"]]) { const v = require(`$${dir}/$${name}.json`).metrics[key]; if (!(v > 0)) { console.error(`bench-smoke: $${name}.json $${key} is $${v}`); process.exit(1); } }' "$$dir"; \
	grep -q '^## fanout' "$$dir/REPORT.md"

.PHONY: soak
# The reliability and security suite (test/reliability, issue #10) at full size, on loopback,
# bounded by RELIABILITY_TIMEOUT_S (3 h): bench/results/reliability.json. docs/reliability.md says more.
soak:
	@scripts/soak.sh
