import { readFile } from 'node:fs/promises';
import { jetstream } from '@nats-io/jetstream';
import {
  ChannelStore,
  connectNats,
  createDb,
  createLogger,
  createSubjects,
  ensureEventStream,
  ensureVendorStream,
  jetstreamManagerFor,
  migrate,
  resolveMasterKey,
  runMain,
} from '@mps/shared';
import { VendorClients } from './clients.js';
import { loadSenderConfig } from './config.js';
import { VendorRates } from './rate.js';
import { startSender } from './worker.js';

await runMain(async () => {
  const config = loadSenderConfig();
  const rates = new VendorRates(config.SENDER_RATE_LIMITS);
  const log = createLogger('sender', config.LOG_LEVEL);
  const subjects = createSubjects(config.NATS_PREFIX);
  const db = createDb(config.DATABASE_URL, 10, log);
  await migrate(db);
  const nc = await connectNats(config.NATS_URL, `sender-${process.pid}`);
  const js = jetstream(nc);
  const jsm = await jetstreamManagerFor(nc);
  await ensureEventStream(jsm, subjects);
  await ensureVendorStream(jsm, subjects);
  const clients = new VendorClients(new ChannelStore(db, await resolveMasterKey(config)), {
    apnsOrigin: config.APNS_ORIGIN,
    fcmOrigin: config.FCM_ORIGIN,
    huaweiOAuthUrl: config.HUAWEI_OAUTH_URL,
    huaweiPushOrigin: config.HUAWEI_PUSH_ORIGIN,
    xiaomiOrigin: config.XIAOMI_ORIGIN,
    ca: config.VENDOR_CA_FILE === '' ? undefined : await readFile(config.VENDOR_CA_FILE, 'utf8'),
  });
  const sender = await startSender({
    nc,
    js,
    db,
    subjects,
    clients,
    log,
    batch: config.SENDER_BATCH,
    maxAttempts: config.SENDER_MAX_ATTEMPTS,
    presenceTimeoutMs: config.SENDER_PRESENCE_TIMEOUT_MS,
    ackWaitMs: config.SENDER_ACK_WAIT_MS,
    rates,
  });
  log.info('sender started');

  const stop = async (signal: string) => {
    log.info({ signal }, 'sender stopping');
    await sender.stop();
    await clients.close();
    await nc.drain();
    await db.end();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
});
