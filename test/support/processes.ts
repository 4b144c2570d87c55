/**
 * The service as separate processes started from the sources (control plane, gateways, optionally
 * analytics) on a fresh database and NATS prefix, with one app: what end-to-end tests run against.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MasterKey } from '@mps/shared';
import { KeyStore, type CreatedApp } from '@mps/control-plane';
import { PushClient } from '@mps/sdk';
import {
  createTestDatabase,
  createTestNats,
  freePort,
  NATS_URL,
  startService,
  waitForPort,
  type ServiceProcess,
  type TestDatabase,
  type TestNats,
} from './services.js';

export interface ProcessStack {
  database: TestDatabase;
  nats: TestNats;
  app: CreatedApp;
  apiUrl: string;
  gatewayUrls: string[];
  gateways: ServiceProcess[];
  /** The environment every service was started with (database, NATS prefix, master key, ...). */
  env: Record<string, string>;
  api(): PushClient;
  /** Everything the processes printed (for a failing test's report). */
  output(): string;
  stop(): Promise<void>;
}

export async function startProcessStack(options: {
  gateways?: number;
  analytics?: boolean;
  env?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
}): Promise<ProcessStack> {
  const database = await createTestDatabase();
  const nats = await createTestNats();
  const dataDir = await mkdtemp(join(tmpdir(), 'mps-processes-'));
  const masterKey = MasterKey.generate();
  const app = await new KeyStore(database.db, MasterKey.fromBase64(masterKey), 0).createApp('processes');
  const apiPort = await freePort();
  const env = { DATABASE_URL: database.url, NATS_URL, NATS_PREFIX: nats.prefix, DATA_DIR: dataDir, MASTER_KEY: masterKey, API_PORT: String(apiPort), ...options.env };
  const services: ServiceProcess[] = [];
  const gateways: ServiceProcess[] = [];
  const gatewayUrls: string[] = [];
  const stop = async () => {
    await Promise.all(services.map((s) => s.stop()));
    await nats.cleanup();
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const controlPlane = startService('control-plane', env);
    services.push(controlPlane);
    // The control plane migrates the database and creates the streams the others use.
    await waitForPort(apiPort, controlPlane);
    for (let i = 0; i < (options.gateways ?? 1); i++) {
      const port = await freePort();
      const gateway = startService('gateway', { ...env, GATEWAY_PORT: String(port), GATEWAY_ADMIN_PORT: String(await freePort()), ...options.gatewayEnv });
      services.push(gateway);
      gateways.push(gateway);
      await waitForPort(port, gateway);
      gatewayUrls.push(`ws://127.0.0.1:${port}/v1/device`);
    }
    if (options.analytics) services.push(startService('analytics', env));
  } catch (error) {
    await stop();
    throw error;
  }
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  return {
    database,
    nats,
    app,
    apiUrl,
    gatewayUrls,
    gateways,
    env,
    api: () => new PushClient({ baseUrl: apiUrl, keyId: app.keyId, secret: app.secret }),
    output: () => services.map((s) => s.output()).join('\n'),
    stop,
  };
}
