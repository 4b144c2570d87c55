.PHONY: run test build clean

# Start the whole service: NATS, PostgreSQL, gateways, control plane, analytics and a demo device.
run:
	@scripts/run.sh

# Run the whole suite (unit and integration tests against the real NATS and PostgreSQL).
test:
	@scripts/test.sh

build:
	@npx tsc -b

clean:
	rm -rf */dist
