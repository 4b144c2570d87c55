/**
 * Scenario 8: connection credentials that stop being valid while a device is connected. A connect
 * token that expires mid-session closes the connection with 4007 token_expired within the stated
 * grace (GATEWAY_TOKEN_GRACE_MS); an SDK with a token source comes back with a new token and
 * misses nothing. A connected device whose credentials the business server revokes
 * (POST /v1/devices/{id}/revoke) is closed with 4017 revoked within REVOKE_BOUND_MS; reconnecting
 * with the old secret, or registering again with the old id and secret, is refused with
 * 4006 auth_failed, the SDK stops trying, and a push made afterwards stays pending.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CloseCode, encodeFrame, FrameType } from '@mps/shared';
import type { CreatedApp } from '@mps/control-plane';
import { DeviceClient, MemoryCredentialStore, type MessageFrame, type PushClient } from '@mps/sdk';
import { RawSocket } from '../support/gateway.js';
import { eventually } from '../support/services.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { record, sized } from './record.js';

const GRACE_MS = 1000;
const TOKEN_TTL_S = 2;
const RENEWALS = sized(2, 10);
/** A generous bound on when the close comes after exp + grace (the machine is shared and loaded). */
const SLACK_MS = 5000;
const REVOCATIONS = sized(3, 20);
/** The revoked device's connection closes within this of the revoke call (normally milliseconds: one NATS message). */
const REVOKE_BOUND_MS = 2000;

let stack: TestStack;
let app: CreatedApp;
let api: PushClient;
const lateness: number[] = [];
const tally = { checked: 0, lost: 0, duplicates: 0, expired: 0 };
const injected = { expiring_tokens: 0, revoked_secrets: 0, reconnects_with_revoked_secret: 0 };
/** What the revoked devices saw: when their connection closed after the revoke call, with which reasons, and the refusals. */
const revocation = {
  bound_ms: REVOKE_BOUND_MS,
  close_after_revoke_ms: [] as number[],
  closes: {} as Record<string, number>,
  reconnects_refused: 0,
  registers_refused: 0,
};

beforeAll(async () => {
  stack = await startTestStack({ GATEWAY_TOKEN_GRACE_MS: String(GRACE_MS) });
  app = await stack.createApp('tokens');
  api = stack.api(app);
});

afterAll(async () => {
  record('8-tokens', {
    scenario: '8',
    title: 'Connection tokens expiring mid-session, and a revoked device secret',
    injected: { ...injected, grace_ms: GRACE_MS, token_ttl_s: TOKEN_TTL_S },
    messages_checked: tally.checked,
    lost: tally.lost,
    duplicates_shown: tally.duplicates,
    expired_shown: tally.expired,
    crashes: 0,
    detail: { close_after_exp_plus_grace_ms: lateness, revocation },
  });
  await stack?.stop();
});

/** A registered device's credentials (REGISTER once through the SDK). */
async function registered(): Promise<MemoryCredentialStore> {
  const store = new MemoryCredentialStore();
  const first = new DeviceClient({ url: stack.gateway.url, app: app.app, platform: 'android', credentials: store });
  await first.connect();
  first.close();
  return store;
}

it('closes a connection whose connect token expired, and the SDK comes back with a new token, missing nothing', async () => {
  const store = await registered();
  const device = (await store.load())!.device;
  const expiries: number[] = [];
  const shown: MessageFrame[] = [];
  const client = new DeviceClient({
    url: stack.gateway.url,
    app: app.app,
    platform: 'android',
    credentials: store,
    reconnect: { initialMs: 50, maxMs: 200 },
    connectToken: async (id) => {
      injected.expiring_tokens += 1;
      expiries.push((Math.floor(Date.now() / 1000) + TOKEN_TTL_S) * 1000);
      return api.connectToken(id, TOKEN_TTL_S);
    },
    onMessage: (m) => {
      shown.push(m);
    },
  });
  const closes: number[] = [];
  client.on('error', (e) => {
    if (e.close === CloseCode.TOKEN_EXPIRED) {
      closes.push(Date.now());
      lateness.push(Date.now() - ((expiries.at(-1) as number) + GRACE_MS));
    }
  });
  await client.connect();
  const ids: string[] = [];
  try {
    // Pushes every 200 ms across several token lifetimes.
    while (closes.length < RENEWALS) {
      ids.push((await api.pushSimple({ target: { device }, title: `across tokens ${ids.length}` })).messageId);
      await new Promise((r) => setTimeout(r, 200));
      if (ids.length > RENEWALS * 100) break;
    }
    await eventually(async () => (ids.every((id) => shown.some((m) => m.id === id)) ? true : undefined), 15_000, 'every push').catch(() => undefined);
  } finally {
    client.close();
  }
  for (const id of ids) {
    const n = shown.filter((m) => m.id === id).length;
    tally.checked += 1;
    if (n === 0) tally.lost += 1;
    if (n > 1) tally.duplicates += 1;
  }
  tally.expired += shown.filter((m) => m.exp <= Date.now()).length;
  expect(closes.length).toBe(RENEWALS);
  // Never before exp + grace; never much later.
  expect(Math.min(...lateness)).toBeGreaterThanOrEqual(-50);
  expect(Math.max(...lateness)).toBeLessThan(SLACK_MS);
  expect(tally).toMatchObject({ lost: 0, duplicates: 0, expired: 0 });
}, sized(60_000, 180_000));

it('closes a token-authenticated raw socket that keeps pinging past its token, with 4007', async () => {
  const store = await registered();
  const { device } = (await store.load())!;
  const socket = new RawSocket(stack.gateway.url);
  await socket.send(encodeFrame({ t: FrameType.AUTH, v: 1, app: app.app, device, token: await api.connectToken(device, 1), platform: 'web' }));
  injected.expiring_tokens += 1;
  await socket.frame(1);
  let pings = 0;
  let open = true;
  void socket.closed.then(() => (open = false));
  while (open && pings < 100) {
    await socket.send(encodeFrame({ t: FrameType.PING }));
    pings += 1;
    await new Promise((r) => setTimeout(r, 200));
  }
  tally.checked += 1;
  expect(await socket.closed).toEqual({ code: 4007, reason: 'token_expired' });
});

it('closes a connected device whose secret was revoked through the API with 4017, refuses the old secret, and the SDK stops', async () => {
  for (let i = 0; i < REVOCATIONS; i++) {
    const store = await registered();
    const { device, secret } = (await store.load())!;
    const states: string[] = [];
    const shown: MessageFrame[] = [];
    const client = new DeviceClient({
      url: stack.gateway.url,
      app: app.app,
      platform: 'ios',
      credentials: store,
      reconnect: { initialMs: 50, maxMs: 100 },
      onMessage: (m) => {
        shown.push(m);
      },
    });
    client.on('state', (s) => states.push(s));
    const closes: { reason: string; at: number }[] = [];
    client.on('error', (e) => e.close && closes.push({ reason: e.close.reason, at: Date.now() }));
    await client.connect();
    const before = await api.pushSimple({ target: { device }, title: 'before revocation' });
    await eventually(async () => (shown.length === 1 ? true : undefined));

    const started = Date.now();
    await api.revokeDevice(device);
    injected.revoked_secrets += 1;
    await eventually(async () => (client.state === 'closed' ? true : undefined), REVOKE_BOUND_MS + 5000, 'the revoked connection to close');
    const [closed] = closes;
    revocation.close_after_revoke_ms.push((closed?.at ?? Date.now()) - started);

    // Coming back with the stored credentials, through the SDK and as a REGISTER keeping the id.
    await expect(client.connect()).rejects.toMatchObject({ close: CloseCode.AUTH_FAILED });
    revocation.reconnects_refused += 1;
    const again = new RawSocket(stack.gateway.url);
    await again.send(encodeFrame({ t: FrameType.REGISTER, v: 1, app: app.app, device, secret, platform: 'ios' }));
    const registerClosed = await again.closed;
    injected.reconnects_with_revoked_secret += 2;
    if (registerClosed.code === CloseCode.AUTH_FAILED.code) revocation.registers_refused += 1;
    for (const c of closes) revocation.closes[c.reason] = (revocation.closes[c.reason] ?? 0) + 1;

    const after = await api.pushSimple({ target: { device }, title: 'after revocation' });
    await new Promise((r) => setTimeout(r, 300));
    tally.checked += 2;
    expect(closes.map((c) => c.reason)).toEqual(['revoked', 'auth_failed']);
    expect(closed!.at - started).toBeLessThan(REVOKE_BOUND_MS);
    expect(registerClosed).toEqual({ code: CloseCode.AUTH_FAILED.code, reason: 'auth_failed' });
    expect(client.state).toBe('closed');
    // Never reconnected by itself: only the one connect() above, after the close.
    expect(states.filter((s) => s === 'reconnecting')).toEqual([]);
    expect(shown.map((m) => m.id)).toEqual([before.messageId]);
    expect((await api.message(after.messageId)).counts).toMatchObject({ pending: 1, delivered: 0 });
    client.close();
  }
}, sized(60_000, 180_000));
