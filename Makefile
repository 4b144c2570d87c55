.PHONY: run test build clean

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
