/**
 * Scenario 2: the NATS server is SIGKILLed during steady pushes and started again. Every push the
 * API accepted is delivered; every other one was refused with 503 UNAVAILABLE (and, retried with
 * its business id once NATS is back, is accepted and delivered once). JetStream publishes acknowledged
 * just before the kill are all in the stream after the restart. The server is one of the scenario's
 * own; with nats-server 2.10 or later (RELIABILITY_NATS_SERVER) it runs with `sync_interval: always`,
 * the setting docs/decisions.md 21 chooses. The three-node case (one node killed, replicas 3) is
 * test/cluster.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { connectNats } from '@mps/shared';
import { record, sized } from './record.js';
import { send } from './support/http.js';
import { Devices, startFleet, type Fleet } from './support/fleet.js';
import { startOwnNats, type OwnNats } from './support/servers.js';

const DEVICES = sized(10, 200);
const PER_S = sized(20, 100);
const SECONDS = sized(12, 90);
const KILLS = sized(1, 4);
const DOWN_MS = sized(3000, 10_000);
const DURABLE_BURST = sized(500, 20_000);

let nats: OwnNats;
let fleet: Fleet;
let devices: Devices;

beforeAll(async () => {
  nats = await startOwnNats();
  fleet = await startFleet({ gateways: 1, natsUrl: nats.url, env: { RATE_LIMIT_PER_S: '100000' } });
  devices = new Devices(() => fleet.gatewayUrl(), fleet.app.app);
  await devices.connect(DEVICES);
}, 120_000);

afterAll(async () => {
  devices?.close();
  await fleet?.stop();
  await nats?.stop();
});

it('delivers every push the API accepted through NATS restarts, and refuses the others cleanly', async () => {
  const f = fleet;
  onTestFailed(() => console.error(`${f.output().slice(-15_000)}\n--- nats ---\n${nats.output()}`));
  const sign = { keyId: f.app.keyId, secret: f.app.secret };
  type Push = { businessId: string; device: number; accepted?: string; refusedWith?: string };
  const pushes: Push[] = [];
  const inFlight: Promise<void>[] = [];
  const durable = { published: 0, after_restart: 0, acked_per_s: 0 };

  let stopped = false;
  const chaos = (async () => {
    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, (SECONDS * 1000) / (KILLS + 1)));
      // Acknowledged JetStream publishes, then the kill at once.
      if (k === 0) {
        const nc = await connectNats(nats.url, 'durability-probe');
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({ name: 'REL_DURABLE', subjects: ['rel.durable'] });
        const js = jetstream(nc, { timeout: 30_000 });
        // 256 publishes in flight at a time: with an fsync per write the server acks slower.
        const started = Date.now();
        for (let i = 0; i < DURABLE_BURST; i += 256) {
          const batch = Array.from({ length: Math.min(256, DURABLE_BURST - i) }, () => js.publish('rel.durable', new Uint8Array(64)));
          durable.published += (await Promise.all(batch)).length;
        }
        durable.acked_per_s = Math.round(durable.published / ((Date.now() - started) / 1000));
        await nats.kill();
        await nc.close().catch(() => undefined);
      } else {
        await nats.kill();
      }
      await new Promise((r) => setTimeout(r, DOWN_MS));
      await nats.start();
      if (k === 0) {
        const nc = await connectNats(nats.url, 'durability-check');
        durable.after_restart = (await (await jetstreamManager(nc)).streams.info('REL_DURABLE')).state.messages;
        await nc.close();
      }
    }
  })();

  const deadline = Date.now() + SECONDS * 1000;
  while (Date.now() < deadline || !stopped) {
    if (Date.now() >= deadline) {
      await chaos;
      stopped = true;
      break;
    }
    const push: Push = { businessId: randomUUID(), device: pushes.length % DEVICES };
    pushes.push(push);
    inFlight.push(
      send(f.apiUrl, 'POST', '/v1/push/simple', { target: { device: devices.ids[push.device] }, title: `steady ${pushes.length}`, businessId: push.businessId }, sign)
        .then((a) => {
          if (a.status === 202 || a.status === 200) push.accepted = a.body.messageId as string;
          else push.refusedWith = `${a.status} ${a.body.error?.code}`;
        })
        .catch((error: Error) => {
          push.refusedWith = `network: ${error.message}`;
        }),
    );
    await new Promise((r) => setTimeout(r, 1000 / PER_S));
  }
  await Promise.all(inFlight);

  // The business server retries what was refused, with the same business id, until it is accepted.
  const refused = pushes.filter((p) => !p.accepted);
  const retried = { accepted_first_time: pushes.length - refused.length, retries: 0 };
  for (const push of refused) {
    for (let attempt = 0; attempt < 30 && !push.accepted; attempt++) {
      retried.retries += 1;
      const a = await send(f.apiUrl, 'POST', '/v1/push/simple', { target: { device: devices.ids[push.device] }, title: 'retried', businessId: push.businessId }, sign).catch(() => undefined);
      if (a && (a.status === 202 || a.status === 200)) push.accepted = a.body.messageId as string;
      else await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const expected = devices.ids.map(() => new Set<string>());
  for (const p of pushes) if (p.accepted) expected[p.device]!.add(p.accepted);
  await devices.settle(expected, sized(60_000, 300_000));
  const tally = devices.tally(expected);
  const refusals: Record<string, number> = {};
  for (const p of refused) refusals[p.refusedWith ?? '?'] = (refusals[p.refusedWith ?? '?'] ?? 0) + 1;

  record('2-nats-restart', {
    scenario: '2',
    title: 'NATS server SIGKILLed and restarted during steady pushes',
    injected: { nats_sigkills: KILLS, down_ms: DOWN_MS, pushes: pushes.length, per_s: PER_S, devices: DEVICES, nats_version: nats.version, sync_interval_always: nats.syncAlways },
    messages_checked: tally.expected,
    lost: tally.lost,
    duplicates_shown: tally.duplicates,
    expired_shown: devices.expiredShown,
    crashes: f.crashes(),
    detail: {
      ...retried,
      refused_first_time: refused.length,
      refusals,
      never_accepted: pushes.filter((p) => !p.accepted).length,
      jetstream_acked_before_kill: durable.published,
      jetstream_in_stream_after_restart: durable.after_restart,
      jetstream_acked_publishes_per_s: durable.acked_per_s,
      device_reconnects: devices.reconnects,
    },
  });
  expect(pushes.filter((p) => !p.accepted)).toEqual([]);
  expect(durable.after_restart).toBe(durable.published);
  expect(tally.expected).toBe(pushes.length);
  expect({ lost: tally.lost, duplicates: tally.duplicates, unexpected: tally.unexpected }).toEqual({ lost: 0, duplicates: 0, unexpected: 0 });
  expect(f.crashes()).toBe(0);
  // Refused as an outage (retry), never as an internal error.
  expect(Object.keys(refusals).filter((r) => r !== '503 UNAVAILABLE' && !r.startsWith('network:'))).toEqual([]);
}, sized(180_000, 1_800_000));
