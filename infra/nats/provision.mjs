/**
 * Makes the JetStream resources of a deployment replicated: the event stream, the vendor work queue
 * and the nonce bucket get NATS_REPLICAS copies (3 on a three-node cluster, so that losing one node
 * loses no event and stops no API call). The services create these with one replica when they are
 * missing and keep whatever replicas exist, so this runs once before them: `make cluster`, the
 * compose file's `nats-init`, the Kubernetes Job `nats-provision`. Running it again changes nothing.
 *
 *   NATS_URL=nats://a:4222,nats://b:4222,nats://c:4222 NATS_PREFIX=mps NATS_REPLICAS=3 node infra/nats/provision.mjs
 */
import { Kvm } from '@nats-io/kv';
import { CLOCK_SKEW_MS, connectNats, createSubjects, ensureEventStream, ensureVendorStream, jetstreamManagerFor } from '@mps/shared';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = process.env.NATS_PREFIX ?? 'mps';
const replicas = Number(process.env.NATS_REPLICAS ?? '3');
const timeoutMs = Number(process.env.NATS_PROVISION_TIMEOUT_MS ?? '60000');
if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
  process.stderr.write(`configuration: NATS_REPLICAS is invalid ("${process.env.NATS_REPLICAS}"): expected 1 to 5\n`);
  process.exit(1);
}

const subjects = createSubjects(prefix);
const nc = await connectNats(url, `provision-${process.pid}`);
const deadline = Date.now() + timeoutMs;
try {
  // Right after a cluster starts, JetStream answers "temporarily unavailable" until it elects a leader.
  for (let attempt = 1; ; attempt++) {
    try {
      await provision();
      break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      process.stderr.write(`provision: attempt ${attempt} failed (${error instanceof Error ? error.message : String(error)}); retrying\n`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
} finally {
  await nc.close();
}

async function provision() {
  const jsm = await jetstreamManagerFor(nc);
  await ensureEventStream(jsm, subjects);
  await ensureVendorStream(jsm, subjects);
  // The same options as the control plane's NonceGuard; an existing bucket is kept as it is.
  await new Kvm(nc).create(subjects.nonceBucket, { ttl: 2 * CLOCK_SKEW_MS, history: 1, replicas });
  for (const stream of [subjects.eventStream, subjects.vendorStream, `KV_${subjects.nonceBucket}`]) {
    const info = await jsm.streams.info(stream);
    if (info.config.num_replicas !== replicas) await jsm.streams.update(stream, { num_replicas: replicas });
    process.stdout.write(`provision: ${stream} has ${replicas} replica(s)\n`);
  }
}
