import { jetstream } from '@nats-io/jetstream';
import { connectNats, createDb, createLogger, createSubjects, ensureEventStream, jetstreamManagerFor, runMain } from '@mps/shared';
import { loadGatewayConfig } from './config.js';
import { createGateway } from './gateway.js';

await runMain(async () => {
  const config = loadGatewayConfig();
  const log = createLogger('gateway', config.LOG_LEVEL);
  const subjects = createSubjects(config.NATS_PREFIX);
  const db = createDb(config.DATABASE_URL);
  const nc = await connectNats(config.NATS_URL, `gateway-${process.pid}`);
  await ensureEventStream(await jetstreamManagerFor(nc), subjects);
  const gateway = createGateway({ config, db, nc, js: jetstream(nc), subjects, log });
  const port = await gateway.listen();
  log.info({ port, pid: process.pid }, 'gateway listening');

  const stop = async (signal: string) => {
    log.info({ signal }, 'gateway stopping');
    await gateway.close();
    await nc.drain();
    await db.end();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
});
