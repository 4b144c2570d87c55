/**
 * Scenario 6: a device that reads about one message a second while a hundred a second arrive. Its
 * socket is paused (TCP stops reading) and resumed for one message each second; it acks what it
 * reads. The gateway queues at most GATEWAY_MAX_BUFFERED_BYTES for it, then closes it with
 * 4011 backpressure; its memory stays within that bound (plus what the process holds anyway).
 * When the device comes back (the SDK, same credentials) everything it had not acked arrives, once.
 */
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { CloseCode, decodeServerFrame, encodeFrame, FrameType } from '@mps/shared';
import { DeviceClient, MemoryCredentialStore, type MessageFrame } from '@mps/sdk';
import { eventually } from '../support/services.js';
import { record, sized } from './record.js';
import { startFleet, type Fleet } from './support/fleet.js';

const BUFFER_BOUND = 256 * 1024;
const PER_S = 100;
/** Enough to fill the loopback TCP buffers (about 4 MiB here) and then the gateway's bound. */
const MAX_MESSAGES = 3000;
const BODY = 'x'.repeat(3500);
const ROUNDS = sized(1, 3);
/** Above what a slow reader misses: this scenario is about redelivery, scenario 4 (gap.test.ts) about the cap. */
const INBOX_CAP = 100_000;

let fleet: Fleet;

beforeAll(async () => {
  fleet = await startFleet({ gateways: 1, env: { RATE_LIMIT_PER_S: '10000' }, gatewayEnv: { GATEWAY_MAX_BUFFERED_BYTES: String(BUFFER_BOUND), GATEWAY_INBOX_CAP: String(INBOX_CAP) } });
}, 120_000);

afterAll(async () => fleet?.stop());

const rssMb = (): number => {
  const status = readFileSync(`/proc/${fleet.gateways()[0]!.service.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
};

async function gatewayCloses(reason: string): Promise<number> {
  const port = fleet.gateways()[0]!.env.GATEWAY_ADMIN_PORT;
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`mps_gateway_closes_total{reason="${reason}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

it('closes a reader that cannot keep up, within its buffer bound, and redelivers what it missed', async () => {
  const f = fleet;
  onTestFailed(() => console.error(f.output().slice(-10_000)));
  const api = f.api();
  const totals = { checked: 0, lost: 0, duplicates: 0, expired: 0, closes: [] as string[], rss: [] as number[], read: 0, acked: 0, connections: [] as number[], gatewayCloses: [] as number[] };

  for (let round = 0; round < ROUNDS; round++) {
    const store = new MemoryCredentialStore();
    const first = new DeviceClient({ url: f.gatewayUrl(), app: f.app.app, platform: 'android', credentials: store });
    const device = await first.connect();
    first.close();
    const { secret } = (await store.load())!;

    // The slow reader.
    const ws = new WebSocket(f.gatewayUrl());
    const read = new Set<string>();
    const acked = new Set<string>();
    const toAck: string[] = [];
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    const ready = new Promise<void>((resolve) =>
      ws.on('message', (data: Buffer) => {
        const frame = decodeServerFrame(new Uint8Array(data));
        if (frame.t === FrameType.READY) return resolve();
        if (frame.t === FrameType.MESSAGE) {
          read.add(frame.id);
          // Acked in one frame per chunk read, as the SDK batches (the frame rate is limited).
          toAck.push(frame.id);
          if (toAck.length === 1) {
            setImmediate(() => {
              const ids = toAck.splice(0, toAck.length);
              // What was read after the close cannot be acked: it is redelivered, as unacked messages are.
              if (ws.readyState !== WebSocket.OPEN) return;
              for (let i = 0; i < ids.length; i += 256) ws.send(encodeFrame({ t: FrameType.ACK, ids: ids.slice(i, i + 256) }));
              for (const id of ids) acked.add(id);
            });
          }
        }
      }),
    );
    await new Promise((resolve) => ws.once('open', resolve));
    // One chunk read a second (a message, or the few that share its TCP segment): paused after each.
    const tcp = (ws as unknown as { _socket: import('node:net').Socket })._socket;
    tcp.on('data', () => tcp.pause());
    ws.send(encodeFrame({ t: FrameType.AUTH, v: 1, app: f.app.app, device, secret, platform: 'android' }));
    await ready;
    const tick = setInterval(() => tcp.resume(), 1000);
    const rssBefore = rssMb();
    const closesBefore = await gatewayCloses('backpressure');

    // A hundred a second until the gateway gives up on it.
    const pushed: string[] = [];
    let done = false;
    void closed.then(() => (done = true));
    while (!done && pushed.length < MAX_MESSAGES) {
      const batch = await Promise.all(
        Array.from({ length: PER_S / 10 }, () => api.pushSimple({ target: { device }, title: `m${pushed.length}`, body: BODY })),
      );
      pushed.push(...batch.map((b) => b.messageId));
      await new Promise((r) => setTimeout(r, 100));
    }
    const close = await Promise.race([closed, new Promise<{ code: number; reason: string }>((r) => setTimeout(() => r({ code: 0, reason: 'still open' }), 10_000))]);
    clearInterval(tick);
    const rssAfter = rssMb();
    ws.terminate();
    totals.closes.push(`${close.code} ${close.reason}`);
    totals.rss.push(Math.round(rssAfter - rssBefore));

    // Its acks settle (those sent after the gateway closed are lost, and come again: unacked).
    let settled = -1;
    const ackedByReader = await eventually(async () => {
      const r = await f.database.db.query<{ message_id: string }>(`SELECT message_id FROM inbox WHERE device_id = $1 AND status = 'delivered'`, [device]);
      if (r.rows.length === settled) return new Set(r.rows.map((row) => row.message_id));
      settled = r.rows.length;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return undefined;
    }, 20_000, 'the slow reader\'s acks to settle');
    acked.clear();
    for (const id of ackedByReader) acked.add(id);
    const backpressureCloses = await gatewayCloses('backpressure');
    totals.gatewayCloses.push(backpressureCloses - closesBefore);

    // Its next connection gets everything it missed (the inbox cap is above it); should one not,
    // the device reconnects until it has everything.
    const shown: MessageFrame[] = [];
    const back = new DeviceClient({ url: f.gatewayUrl(), app: f.app.app, platform: 'android', credentials: store, onMessage: (m) => void shown.push(m) });
    const missing = () => pushed.filter((id) => !acked.has(id) && !shown.some((m) => m.id === id)).length;
    let connections = 0;
    const pendingRows = async () =>
      Number((await f.database.db.query<{ n: string }>(`SELECT count(*) AS n FROM inbox WHERE device_id = $1 AND status = 'pending'`, [device])).rows[0]?.n);
    for (; connections < 10 && (connections === 0 || missing() > 0); connections++) {
      await back.connect();
      // Until its acks are in the ledger (the pending count stops moving), then the next connection.
      let last = -1;
      await eventually(async () => {
        const now = await pendingRows();
        if (now === last) return true;
        last = now;
        await new Promise((r) => setTimeout(r, 1000));
        return undefined;
      }, 60_000, 'the acks of this connection').catch(() => undefined);
      back.close();
    }
    totals.connections.push(connections);
    const counts = new Map<string, number>();
    for (const m of shown) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
    // Shown = acked by the slow reader, or shown by the SDK after it came back; both is a duplicate.
    for (const id of pushed) if (acked.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
    totals.checked += pushed.length;
    totals.read += read.size;
    totals.acked += acked.size;
    totals.lost += pushed.filter((id) => !counts.has(id)).length;
    totals.duplicates += [...counts.values()].filter((n) => n > 1).length;
    totals.expired += shown.filter((m) => m.exp <= Date.now()).length;
    // The gateway closed it for backpressure. The client sees 4011 only if it reads on to the close
    // frame, queued behind what it did not read; here the connection ends without it (1006).
    expect(totals.gatewayCloses.at(-1)).toBe(1);
    expect([CloseCode.BACKPRESSURE.code, 1006]).toContain(close.code);
  }

  record('6-slow-reader', {
    scenario: '6',
    title: 'A device reading 1 message/s while 100/s arrive',
    injected: { slow_readers: ROUNDS, arrival_per_s: PER_S, read_per_s: 1, message_bytes: BODY.length, gateway_max_buffered_bytes: BUFFER_BOUND },
    messages_checked: totals.checked,
    lost: totals.lost,
    duplicates_shown: totals.duplicates,
    expired_shown: totals.expired,
    crashes: f.crashes(),
    detail: { client_saw: totals.closes, gateway_backpressure_closes: totals.gatewayCloses, read_by_slow_reader: totals.read, acked_by_slow_reader: totals.acked, connections_to_catch_up: totals.connections, gateway_rss_growth_mb: totals.rss },
  });
  expect(totals).toMatchObject({ lost: 0, duplicates: 0, expired: 0 });
  expect(f.crashes()).toBe(0);
  // Memory: what the slow socket made the gateway hold stays near its buffer bound (a generous margin for the rest of the process).
  expect(Math.max(...totals.rss)).toBeLessThan(BUFFER_BOUND / 1024 / 1024 + 64);
}, sized(120_000, 600_000));
