/** A gateway running in the test process against the real NATS and PostgreSQL, and raw sockets to poke it. */
import { jetstream } from '@nats-io/jetstream';
import WebSocket from 'ws';
import { ApiKeyLookup, createLogger, ensureEventStream, jetstreamManagerFor, type Db, type MasterKey } from '@mps/shared';
import { createGateway, createMetrics, loadGatewayConfig, type Gateway } from '@mps/gateway';
import { freePort, NATS_URL, type TestNats } from './services.js';

export interface TestGateway {
  gateway: Gateway;
  url: string;
  close(): Promise<void>;
}

/** `masterKey` must be the one the test's apps were created with (device tokens are checked with their keys). */
export async function startTestGateway(
  db: Db,
  nats: TestNats,
  masterKey: MasterKey,
  env: Record<string, string> = {},
): Promise<TestGateway> {
  const port = await freePort();
  const config = loadGatewayConfig({
    NATS_URL,
    NATS_PREFIX: nats.prefix,
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: String(port),
    GATEWAY_ADMIN_PORT: '0',
    ...env,
  });
  await ensureEventStream(await jetstreamManagerFor(nats.nc), nats.subjects);
  const gateway = createGateway({
    config,
    db,
    nc: nats.nc,
    js: jetstream(nats.nc),
    subjects: nats.subjects,
    keys: new ApiKeyLookup(db, masterKey, 0),
    metrics: createMetrics(),
    log: createLogger('gateway', 'silent'),
  });
  await gateway.listen();
  return { gateway, url: `ws://127.0.0.1:${port}/v1/device`, close: async () => gateway.close() };
}

/** A raw socket: what a buggy or hostile client can send. */
export class RawSocket {
  readonly frames: Uint8Array[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly ws: WebSocket;
  private readonly opened: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.binaryType = 'nodebuffer';
    this.ws.on('message', (data: Buffer) => this.frames.push(new Uint8Array(data)));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  async send(data: Uint8Array | string): Promise<void> {
    await this.opened;
    this.ws.send(data);
  }

  /** Waits for the n-th frame (1-based) from the gateway. */
  async frame(n = 1, ms = 5000): Promise<Uint8Array> {
    const deadline = Date.now() + ms;
    while (this.frames.length < n) {
      if (Date.now() > deadline) throw new Error(`no frame ${n} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.frames[n - 1] as Uint8Array;
  }

  close(): void {
    this.ws.close();
  }
}
