/**
 * Scenario 13: one app floods the API at ten times its rate limit, and one of its devices floods
 * its gateway with frames. The flooding app's excess is answered 429 (with Retry-After), its
 * abusive socket is closed with 4008 rate_limited, and another app, pushing steadily meanwhile,
 * gets no 429 and loses nothing. Its p50/p99 latency before and during the flood is recorded in
 * the results (not asserted: performance figures live in the bench json).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodeFrame, FrameType } from '@mps/shared';
import type { CreatedApp } from '@mps/control-plane';
import { RawSocket } from '../support/gateway.js';
import { startTestStack, type TestDevice, type TestStack } from '../support/stack.js';
import { quantile, record, sized } from './record.js';
import { send } from './support/http.js';

const LIMIT = 20;
const FLOOD_FACTOR = 10;
const SECONDS = sized(3, 30);
const VICTIM_PER_S = 10;

let stack: TestStack;
let flooder: CreatedApp;
let victim: CreatedApp;
let victimDevice: TestDevice;

beforeAll(async () => {
  stack = await startTestStack({ GATEWAY_MAX_FRAMES_PER_S: '20' });
  flooder = await stack.createApp('flooder');
  victim = await stack.createApp('victim');
  await stack.database.db.query('UPDATE apps SET rate_limit_per_s = $2 WHERE id = $1', [flooder.app, LIMIT]);
  victimDevice = await stack.device(victim);
});

afterAll(async () => stack?.stop());

/** The victim pushes VICTIM_PER_S a second for `seconds`; returns latencies, statuses and the ids accepted. */
async function steady(seconds: number): Promise<{ ms: number[]; statuses: number[]; ids: string[] }> {
  const out = { ms: [] as number[], statuses: [] as number[], ids: [] as string[] };
  const sends: Promise<void>[] = [];
  for (let i = 0; i < seconds * VICTIM_PER_S; i++) {
    sends.push(
      send(stack.apiUrl, 'POST', '/v1/push/simple', { target: { device: victimDevice.id }, title: `steady ${i}` }, { keyId: victim.keyId, secret: victim.secret }).then((a) => {
        out.ms.push(a.ms);
        out.statuses.push(a.status);
        if (a.status === 202) out.ids.push(a.body.messageId as string);
      }),
    );
    await new Promise((r) => setTimeout(r, 1000 / VICTIM_PER_S));
  }
  await Promise.all(sends);
  return out;
}

it("answers an app's excess with 429, closes its abusive socket, and leaves other apps alone", async () => {
  const baseline = await steady(SECONDS);

  // The flood: LIMIT x FLOOD_FACTOR requests a second, spread over each second.
  const flood = { sent: 0, ok: 0, limited: 0, other: 0, retryAfter: 0, seconds: 0 };
  const flooding = (async () => {
    const inFlight: Promise<void>[] = [];
    const perS = LIMIT * FLOOD_FACTOR;
    const started = Date.now();
    for (let i = 0; i < SECONDS * perS; i++) {
      flood.sent += 1;
      inFlight.push(
        send(stack.apiUrl, 'GET', '/v1/messages?limit=1', undefined, { keyId: flooder.keyId, secret: flooder.secret }).then((a) => {
          if (a.status === 200) flood.ok += 1;
          else if (a.status === 429) {
            flood.limited += 1;
            if (Number(a.headers.get('retry-after')) >= 1 && a.body.error?.code === 'RATE_LIMITED') flood.retryAfter += 1;
          } else flood.other += 1;
        }),
      );
      await new Promise((r) => setTimeout(r, 1000 / perS));
    }
    await Promise.all(inFlight);
    flood.seconds = (Date.now() - started) / 1000;
  })();

  // The abusive socket: a registered device of the flooder sending PINGs far beyond its frame rate.
  const abusive = new RawSocket(stack.gateway.url);
  await abusive.send(encodeFrame({ t: FrameType.REGISTER, v: 1, app: flooder.app, platform: 'android' }));
  await abusive.frame(1);
  let pings = 0;
  const pinging = (async () => {
    const deadline = Date.now() + SECONDS * 1000;
    let open = true;
    void abusive.closed.then(() => (open = false));
    while (open && Date.now() < deadline) {
      for (let i = 0; i < 20; i++) await abusive.send(encodeFrame({ t: FrameType.PING }));
      pings += 20;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const during = await steady(SECONDS);
  await Promise.all([flooding, pinging]);
  const closed = await Promise.race([abusive.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);

  const accepted = [...baseline.ids, ...during.ids];
  await victimDevice.waitFor(accepted.length, 20_000).catch(() => undefined);
  const shown = new Map<string, number>();
  for (const m of victimDevice.shown) shown.set(m.id, (shown.get(m.id) ?? 0) + 1);
  const lost = accepted.filter((id) => !shown.has(id)).length;
  const duplicates = [...shown.values()].filter((n) => n > 1).length;
  const figures = (ms: number[]) => ({ p50_ms: Math.round(quantile(ms, 0.5) * 10) / 10, p99_ms: Math.round(quantile(ms, 0.99) * 10) / 10, requests: ms.length });

  record('13-flood', {
    scenario: '13',
    title: 'One app flooding at ten times its rate limit, and an abusive socket',
    injected: { rate_limit_per_s: LIMIT, flood_requests: flood.sent, flood_seconds: SECONDS, flood_factor: FLOOD_FACTOR, abusive_socket_pings: pings },
    messages_checked: accepted.length,
    lost,
    duplicates_shown: duplicates,
    expired_shown: victimDevice.shown.filter((m) => m.exp <= Date.now()).length,
    crashes: 0,
    detail: {
      flooder: flood,
      abusive_socket_close: closed ?? 'still open',
      victim_before: figures(baseline.ms),
      victim_during: figures(during.ms),
      victim_429s: [...baseline.statuses, ...during.statuses].filter((s) => s === 429).length,
    },
  });

  // At most LIMIT a second got through (fixed one-second windows: one of slack at each end; a loaded
  // machine stretches the flood, so the windows are counted over the time it really took).
  const windows = Math.ceil(flood.seconds) + 2;
  expect(flood.ok).toBeLessThanOrEqual(LIMIT * windows);
  expect(flood.limited).toBeGreaterThanOrEqual(flood.sent - LIMIT * windows);
  expect(flood.limited).toBeGreaterThan(flood.sent / 2);
  expect(flood.retryAfter).toBe(flood.limited);
  expect(flood.other).toBe(0);
  expect(closed).toEqual({ code: 4008, reason: 'rate_limited' });
  expect([...baseline.statuses, ...during.statuses].every((s) => s === 202)).toBe(true);
  expect({ lost, duplicates }).toEqual({ lost: 0, duplicates: 0 });
}, sized(60_000, 300_000));
