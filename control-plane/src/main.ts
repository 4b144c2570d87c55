import { jetstream } from '@nats-io/jetstream';
import {
  connectNats,
  createDb,
  createLogger,
  createSubjects,
  ensureEventStream,
  jetstreamManagerFor,
  migrate,
  resolveMasterKey,
  runMain,
} from '@mps/shared';
import { buildApp } from './app.js';
import { loadControlPlaneConfig } from './config.js';
import { startExpirySweep } from './expiry.js';
import { KeyStore } from './keys.js';
import { startLedger } from './ledger.js';
import { NonceGuard } from './nonces.js';
import { startReceipts } from './receipts.js';

await runMain(async () => {
  const config = loadControlPlaneConfig();
  const log = createLogger('control-plane', config.LOG_LEVEL);
  const subjects = createSubjects(config.NATS_PREFIX);
  const db = createDb(config.DATABASE_URL, 20, log);
  const applied = await migrate(db);
  if (applied.length > 0) log.info({ applied }, 'migrations applied');
  const nc = await connectNats(config.NATS_URL, `control-plane-${process.pid}`);
  const js = jetstream(nc);
  await ensureEventStream(await jetstreamManagerFor(nc), subjects);
  const keys = new KeyStore(db, await resolveMasterKey(config), config.KEY_CACHE_MS);
  const nonces = await NonceGuard.open(nc, subjects);
  const ledger = await startLedger({ nc, js, db, subjects, log });
  const receipts = await startReceipts({ nc, js, db, keys, subjects, log, horizonMs: config.RECEIPT_HORIZON_S * 1000 });
  const expiry = startExpirySweep({ db, js, subjects, log, intervalMs: config.EXPIRY_SWEEP_MS, retentionDays: config.RETENTION_DAYS });
  const app = await buildApp({
    db,
    nc,
    js,
    subjects,
    keys,
    nonces,
    log,
    defaultTtlS: config.DEFAULT_TTL_S,
    maxTtlS: config.MAX_TTL_S,
    rateLimitPerS: config.RATE_LIMIT_PER_S,
    console: {
      ...(config.CONSOLE_DIR !== '' && { dir: config.CONSOLE_DIR }),
      sessionTtlS: config.CONSOLE_SESSION_TTL_S,
      secureCookie: config.CONSOLE_COOKIE_SECURE,
      signInsPerMinute: config.CONSOLE_SIGN_INS_PER_MINUTE,
    },
  });
  await app.listen({ host: config.API_HOST, port: config.API_PORT });

  const stop = async (signal: string) => {
    log.info({ signal }, 'control plane stopping');
    await app.close();
    await Promise.all([ledger.stop(), receipts.stop(), expiry.stop()]);
    await nc.drain();
    await db.end();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
});
