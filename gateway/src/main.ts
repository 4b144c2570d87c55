import { jetstream } from '@nats-io/jetstream';
import {
  ApiKeyLookup,
  connectNats,
  createDb,
  createLogger,
  createSubjects,
  ensureEventStream,
  jetstreamManagerFor,
  resolveMasterKey,
  runMain,
} from '@mps/shared';
import { loadGatewayConfig } from './config.js';
import { createGateway } from './gateway.js';
import { createMetrics, serveAdmin } from './metrics.js';

/** How long a device token's signing key stays cached (a disabled key stops within this). */
const KEY_CACHE_MS = 10_000;

await runMain(async () => {
  const config = loadGatewayConfig();
  const log = createLogger('gateway', config.LOG_LEVEL);
  const subjects = createSubjects(config.NATS_PREFIX);
  const db = createDb(config.DATABASE_URL, 10, log);
  const keys = new ApiKeyLookup(db, await resolveMasterKey(config), KEY_CACHE_MS);
  const nc = await connectNats(config.NATS_URL, `gateway-${process.pid}`);
  await ensureEventStream(await jetstreamManagerFor(nc), subjects);
  const metrics = createMetrics();
  const gateway = createGateway({ config, db, nc, js: jetstream(nc), subjects, keys, metrics, log });
  const port = await gateway.listen();
  const admin =
    config.GATEWAY_ADMIN_PORT === 0
      ? undefined
      : await serveAdmin(metrics, () => gateway.accepting, config.GATEWAY_ADMIN_HOST, config.GATEWAY_ADMIN_PORT);
  log.info({ port, admin: config.GATEWAY_ADMIN_PORT, pid: process.pid }, 'gateway listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // SIGTERM (an orchestrator) drains gracefully; SIGINT (Ctrl-C) closes at once.
    const window = signal === 'SIGTERM' ? config.GATEWAY_DRAIN_WINDOW_MS : 0;
    log.info({ signal, connections: gateway.connections, window }, 'gateway draining');
    await gateway.drain(window);
    admin?.close();
    await nc.drain();
    await db.end();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
});
