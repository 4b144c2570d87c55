/**
 * Scenario 14: vendor faults. The vendor sender runs as its own process against the four vendor
 * fakes (the real wire protocols over TLS) while they answer with the faults vendors give: APNs
 * 410 Unregistered with a timestamp newer and older than the token's registration, 429 and 503;
 * FCM UNREGISTERED, 503 with Retry-After (and at full size 429 QUOTA_EXCEEDED with Retry-After);
 * Huawei and Xiaomi 503 with Retry-After and refused tokens; other 4xx from each; and HTTP/2
 * GOAWAY from APNs (the HTTP/1.1 equivalent, `Connection: close`, from FCM, which we reach over
 * HTTP/1.1), both at once and racing the sender's streams.
 *
 * Rounds of pushes (a message per device, then a broadcast, in turn) to several apps' offline
 * devices. Every (message, token) a vendor saw is followed through the fakes' logs: delivered once,
 * or refused for good with no retry; a retryable refusal retried no sooner than its Retry-After (or
 * the sender's one-second first backoff where the vendor gives none); tokens killed only when the
 * vendor said so, and an APNs token registered after the 410's timestamp kept and used; connections
 * per app bounded.
 *
 * `duplicates_shown` counts vendor acceptances of one message for one token beyond the first: what
 * reached the vendor twice, before the device would collapse the copies (APNs collapse id, FCM and
 * Huawei tag, Xiaomi notify_id, all the message id).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CreatedApp } from '@mps/control-plane';
import { newId, type Vendor } from '@mps/shared';
import type { PushClient } from '@mps/sdk';
import { CONNECTIONS_PER_HOST } from '../../sender/src/vendors/types.js';
import type { ApnsReason } from '../fakes/apns.js';
import type { Connection, Fake, Received, Refused } from '../fakes/common.js';
import { testTls } from '../fakes/tls.js';
import { eventually } from '../support/services.js';
import { apnsToken, configureChannels, startFakes, type Fakes } from '../support/vendors.js';
import { quantile, record, sized } from './record.js';
import { startFleet, type Fleet } from './support/fleet.js';

const APPS = sized(2, 4);
/** Devices per vendor per app: more FCM tokens than CONNECTIONS_PER_HOST in one broadcast call. */
const PER_VENDOR = sized(120, 400);
/** Rounds of pushes: a message per device, then a broadcast, in turn. */
const ROUNDS = sized(3, 8);
/** Tokens per app for each token fault. */
const K = sized(2, 6);
const RETRY_AFTER_S = 2;
/** FCM's 429 wants at least a minute: only the full size waits for it. */
const FCM_QUOTA_RETRY_AFTER_S = 65;
const FCM_QUOTA_PER_APP = sized(0, 1);
/** APNs gives no Retry-After: the sender's first backoff is a second. */
const SENDER_FIRST_BACKOFF_MS = 1000;
/** Timers may fire a few ms early against the wall clock the fakes stamp with. */
const TIMER_SLACK_MS = 50;
/**
 * A generous bound on how late a retry may come (batches ahead of it, a loaded machine): below the
 * sender's 30 s ack wait, so a retry left waiting for it shows.
 */
const LATE_MS = 20_000;
const ROUND_TIMEOUT_MS = sized(60_000, 300_000);
const VENDORS: Vendor[] = ['apns', 'fcm', 'huawei', 'xiaomi'];
/** Targets of one multiple push (the API's limit). */
const MAX_TARGETS = 1000;
const PLATFORM: Record<Vendor, string> = { apns: 'ios', fcm: 'android', huawei: 'android', xiaomi: 'android' };

let fleet: Fleet;
let fakes: Fakes;

beforeAll(async () => {
  const caFile = join(await mkdtemp(join(tmpdir(), 'mps-vendor-faults-ca-')), 'ca.pem');
  await writeFile(caFile, (await testTls()).ca);
  fakes = await startFakes(caFile);
  fleet = await startFleet({ gateways: 0, senderEnv: { ...fakes.env } });
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
  await fakes?.close();
});

interface Token {
  token: string;
  vendor: Vendor;
  device: string;
  app: number;
  registeredAt: Date;
}

interface AppUnderTest {
  created: CreatedApp;
  api: PushClient;
  tokens: Record<Vendor, Token[]>;
}

/** One try of a (message, token) as a fake saw it. */
interface Event {
  at: number;
  connection: number;
  accepted: boolean;
  status?: number;
  reason?: string;
  retryAfter?: number;
}

const fakeOf = (vendor: Vendor): Fake<unknown, unknown> => fakes[vendor] as unknown as Fake<unknown, unknown>;

/** The message id each vendor's body carries (`mps_id`, from the sender's messageData). */
function messageIdOf(vendor: Vendor, body: unknown): string {
  const b = body as Record<string, unknown>;
  if (vendor === 'apns') return String(b.mps_id);
  if (vendor === 'fcm') return String(((b.message as Record<string, unknown>).data as Record<string, string>).mps_id);
  if (vendor === 'huawei') return String((JSON.parse(String((b.message as Record<string, unknown>).data)) as Record<string, string>).mps_id);
  return String((JSON.parse(String(b.payload)) as Record<string, string>).mps_id);
}

const retryable = (status: number) => status === 429 || status >= 500;

async function addDevices(app: number, created: CreatedApp): Promise<Record<Vendor, Token[]>> {
  const rows = VENDORS.flatMap((vendor) =>
    Array.from({ length: PER_VENDOR }, (_, i) => ({
      device: newId(),
      vendor,
      token: vendor === 'apns' ? apnsToken() : `${vendor}-${app}-${i}-${newId()}`,
    })),
  );
  const { db } = fleet.database;
  await db.query(
    `INSERT INTO devices (id, app_id, secret_hash, platform, app_version)
     SELECT id, $1, '\\x00', platform, '1.0.0' FROM unnest($2::uuid[], $3::text[]) AS d(id, platform)`,
    [created.app, rows.map((r) => r.device), rows.map((r) => PLATFORM[r.vendor])],
  );
  const inserted = await db.query<{ device_id: string; updated_at: Date }>(
    `INSERT INTO device_vendor_tokens (device_id, vendor, token) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])
     RETURNING device_id, updated_at`,
    [rows.map((r) => r.device), rows.map((r) => r.vendor), rows.map((r) => r.token)],
  );
  const registered = new Map(inserted.rows.map((r) => [r.device_id, r.updated_at]));
  const tokens = { apns: [], fcm: [], huawei: [], xiaomi: [] } as Record<Vendor, Token[]>;
  for (const r of rows) tokens[r.vendor].push({ ...r, app, registeredAt: registered.get(r.device) as Date });
  return tokens;
}

/** Polls until `ready()`, then runs `then` once (a GOAWAY in the middle of a round). */
function when(ready: () => boolean, then: () => void, until: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (ready()) then();
      if (ready() || until()) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
}

it('honours vendor faults: kills only what the vendor killed, waits Retry-After, never retries other 4xx, bounds connections', async () => {
  const apps: AppUnderTest[] = [];
  for (let a = 0; a < APPS; a++) {
    const created = await fleet.createApp(`vendor-faults-${a}`);
    const api = fleet.api(created);
    await configureChannels(api, fakes);
    apps.push({ created, api, tokens: await addDevices(a, created) });
  }
  const slice = (tokens: Token[], kind: number) => tokens.slice(kind * K, (kind + 1) * K);

  // Round 0's token faults. APNs: 410 after and before the registration, 429, 503, other 4xx.
  const expectDead = new Set<string>();
  const expectKept = new Set<string>();
  const APNS_OTHER_4XX: ApnsReason[] = ['PayloadTooLarge', 'BadTopic', 'Forbidden'];
  for (const app of apps) {
    const { apns, fcm, huawei, xiaomi } = app.tokens;
    for (const t of slice(apns, 0)) {
      fakes.apns.answer({ token: t.token, reason: 'Unregistered' }); // timestamp: the answer's time
      expectDead.add(t.token);
    }
    for (const t of slice(apns, 1)) {
      // APNs found the token invalid a minute before the device registered it (again): keep it.
      fakes.apns.answer({ token: t.token, reason: 'Unregistered', timestamp: t.registeredAt.getTime() - 60_000, times: 1 });
      expectKept.add(t.token);
    }
    for (const t of slice(apns, 2)) fakes.apns.answer({ token: t.token, reason: 'TooManyRequests', times: 1 });
    for (const t of slice(apns, 3)) fakes.apns.answer({ token: t.token, reason: 'ServiceUnavailable', times: 1 });
    slice(apns, 4).forEach((t, i) => fakes.apns.answer({ token: t.token, reason: APNS_OTHER_4XX[i % APNS_OTHER_4XX.length] as ApnsReason, times: 1 }));
    for (const t of slice(fcm, 0)) {
      fakes.fcm.answer({ token: t.token, error: 'UNREGISTERED' });
      expectDead.add(t.token);
    }
    for (const t of slice(fcm, 1)) fakes.fcm.answer({ token: t.token, error: 'UNAVAILABLE', retryAfter: RETRY_AFTER_S, times: 1 });
    for (const t of slice(fcm, 2)) fakes.fcm.answer({ token: t.token, error: 'INVALID_ARGUMENT', message: 'Request contains an invalid argument.', times: 1 });
    for (const t of slice(fcm, 3)) fakes.fcm.answer({ token: t.token, error: 'THIRD_PARTY_AUTH_ERROR', times: 1 });
    for (const t of slice(fcm, 4).slice(0, FCM_QUOTA_PER_APP)) {
      fakes.fcm.answer({ token: t.token, error: 'QUOTA_EXCEEDED', retryAfter: FCM_QUOTA_RETRY_AFTER_S, times: 1 });
    }
    for (const t of slice(huawei, 0)) {
      fakes.huawei.answer({ token: t.token });
      expectDead.add(t.token);
    }
    for (const t of slice(xiaomi, 0)) {
      fakes.xiaomi.answer({ token: t.token });
      expectDead.add(t.token);
    }
  }

  /** Every (message, token) due to a vendor: pushed to a device whose token was live. */
  const due = new Map<string, Token>();
  const pairKey = (message: string, token: string) => `${message}/${token}`;
  /** Tokens dead since round 0 (checked against expectDead then). */
  const dead = new Set<string>();
  const rounds: { kind: string; due: number; seconds: number }[] = [];

  for (let round = 0; round < ROUNDS; round++) {
    const broadcast = round % 2 === 1;
    if (round > 0) {
      // Later rounds: the APNs and FCM transient faults again, on tokens still live, and Huawei's and
      // Xiaomi's whole-request answers: 503 with Retry-After, and in the per-device rounds a 4xx.
      for (const app of apps) {
        const offset = 5 + ((round * 2) % Math.floor(PER_VENDOR / K - 6));
        for (const t of slice(app.tokens.apns, offset)) fakes.apns.answer({ token: t.token, reason: 'TooManyRequests', times: 1 });
        for (const t of slice(app.tokens.apns, offset + 1)) fakes.apns.answer({ token: t.token, reason: 'ServiceUnavailable', times: 1 });
        for (const t of slice(app.tokens.fcm, offset)) fakes.fcm.answer({ token: t.token, error: 'UNAVAILABLE', retryAfter: RETRY_AFTER_S, times: 1 });
      }
      const requests = broadcast ? APPS : K * APPS;
      fakes.huawei.answer({ status: 503, retryAfter: RETRY_AFTER_S, times: requests });
      fakes.xiaomi.answer({ status: 503, retryAfter: RETRY_AFTER_S, times: requests });
      if (!broadcast) {
        fakes.huawei.answer({ code: '80100003', times: K * APPS });
        fakes.xiaomi.answer({ status: 400, times: K * APPS });
      }
    }

    const started = Date.now();
    const messages: string[] = [];
    let dueThisRound = 0;
    let apnsDue = 0;
    for (const app of apps) {
      const targets = VENDORS.flatMap((v) => app.tokens[v].filter((t) => !dead.has(t.token)));
      if (broadcast) {
        const accepted = await app.api.pushBroadcast({ title: `round ${round}`, ttl: 3600 });
        messages.push(accepted.messageId);
        for (const t of targets) due.set(pairKey(accepted.messageId, t.token), t);
      } else {
        const byDevice = new Map(targets.map((t) => [t.device, t]));
        for (let i = 0; i < targets.length; i += MAX_TARGETS) {
          const chunk = targets.slice(i, i + MAX_TARGETS);
          const task = await app.api.pushMultiple({ targets: chunk.map((t) => ({ device: t.device })), title: `round ${round}`, ttl: 3600 });
          const ids = task.messages.map((m) => m.messageId);
          messages.push(...ids);
          const inbox = await fleet.database.db.query<{ message_id: string; device_id: string }>(
            'SELECT message_id, device_id FROM inbox WHERE message_id = ANY($1::uuid[])',
            [ids],
          );
          expect(inbox.rows).toHaveLength(chunk.length);
          for (const row of inbox.rows) {
            const t = byDevice.get(row.device_id) as Token;
            due.set(pairKey(row.message_id, t.token), t);
          }
        }
      }
      dueThisRound += targets.length;
      apnsDue += targets.filter((t) => t.vendor === 'apns').length;
    }

    let settled = false;
    const midway: Promise<void>[] = [];
    if (round > 0) {
      // A GOAWAY racing the streams a third into the round (that stream and later ones on its
      // connection refused), and one to every connection at two thirds.
      const apnsBefore = fakes.apns.received.length;
      fakes.apns.goaway(Math.max(1, Math.floor(apnsDue / 3)));
      midway.push(
        when(
          () => fakes.apns.received.length - apnsBefore >= (2 * apnsDue) / 3,
          () => {
            fakes.apns.goaway();
            fakes.fcm.goaway();
          },
          () => settled,
        ),
      );
    }
    await eventually(
      async () => {
        const r = await fleet.database.db.query<{ rows: number; open: number }>(
          `SELECT count(*)::int AS rows, count(*) FILTER (WHERE status IN ('sending', 'retry'))::int AS open
           FROM vendor_sends WHERE message_id = ANY($1::uuid[])`,
          [messages],
        );
        const row = r.rows[0] as { rows: number; open: number };
        return row.rows >= dueThisRound && row.open === 0 ? true : undefined;
      },
      ROUND_TIMEOUT_MS,
      `round ${round}'s ${dueThisRound} vendor sends settled`,
    ).catch(async (error: unknown) => {
      const open = await fleet.database.db.query(
        `SELECT vendor, status, attempts, reason, count(*)::int AS n FROM vendor_sends
         WHERE message_id = ANY($1::uuid[]) AND status IN ('sending', 'retry') GROUP BY 1, 2, 3, 4`,
        [messages],
      );
      throw new Error(`${(error as Error).message}; open: ${JSON.stringify(open.rows)}\n${fleet.output().slice(-3000)}`);
    });
    settled = true;
    await Promise.all(midway);
    rounds.push({ kind: broadcast ? 'broadcast' : 'per device', due: dueThisRound, seconds: (Date.now() - started) / 1000 });

    if (round === 0) {
      // Killed exactly what the vendors called dead; the token registered after the 410 is kept.
      const killed = await fleet.database.db.query<{ token: string }>('SELECT token FROM device_vendor_tokens WHERE dead_at IS NOT NULL');
      for (const r of killed.rows) dead.add(r.token);
      expect(dead).toEqual(expectDead);
      const keptReasons = await fleet.database.db.query<{ reason: string }>(
        `SELECT v.reason FROM vendor_sends v JOIN device_vendor_tokens t ON t.device_id = v.device_id
         WHERE t.token = ANY($1::text[]) AND v.message_id = ANY($2::uuid[])`,
        [[...expectKept], messages],
      );
      expect(keptReasons.rows).toHaveLength(expectKept.size);
      for (const r of keptReasons.rows) expect(r.reason).toMatch(/^invalid token: Unregistered \(token kept/);
    }
  }

  // Every try of every due (message, token), as the fakes saw them.
  const events = new Map<string, Event[]>();
  let unexpected = 0;
  for (const vendor of VENDORS) {
    const fake = fakeOf(vendor);
    const add = (entry: Received | Refused, accepted: boolean) => {
      const key = pairKey(messageIdOf(vendor, entry.body), entry.token);
      if (!due.has(key)) {
        unexpected += 1;
        return;
      }
      const refused = entry as Refused;
      const list = events.get(key) ?? [];
      list.push(accepted
        ? { at: entry.at, connection: entry.connection, accepted }
        : { at: entry.at, connection: entry.connection, accepted, status: refused.status, reason: refused.reason, ...(refused.retryAfter !== undefined && { retryAfter: refused.retryAfter }) });
      events.set(key, list);
    };
    for (const r of fake.received) add(r, true);
    for (const r of fake.refused) add(r, false);
  }

  let lost = 0;
  let duplicates = 0;
  const duplicatesByVendor: Partial<Record<Vendor, number>> = {};
  const duplicateExamples: string[] = [];
  let retriedAfterFinal = 0;
  let refusedForGood = 0;
  const lostExamples: string[] = [];
  const waits = new Map<string, { retryAfterMs: number; waitsMs: number[] }>();
  const tooSoon: string[] = [];
  const tooLate: string[] = [];
  const injected = new Map<string, number>();
  for (const [key, token] of due) {
    const list = (events.get(key) ?? []).sort((a, b) => a.at - b.at);
    const accepted = list.filter((e) => e.accepted).length;
    if (accepted > 1) {
      duplicates += accepted - 1;
      duplicatesByVendor[token.vendor] = (duplicatesByVendor[token.vendor] ?? 0) + accepted - 1;
      if (duplicateExamples.length < 5) duplicateExamples.push(`${token.vendor} ${key}: ${JSON.stringify(list)}`);
    }
    list.forEach((e, i) => {
      if (e.accepted) return;
      const kind = e.reason === `HTTP ${e.status}` ? `${token.vendor}_${e.status}` : `${token.vendor}_${e.status}_${e.reason}`;
      injected.set(kind, (injected.get(kind) ?? 0) + 1);
      const next = list[i + 1];
      if (!retryable(e.status as number)) {
        if (next !== undefined) retriedAfterFinal += 1;
        return;
      }
      if (next === undefined) return; // never tried again: counted lost below
      const needMs = e.retryAfter !== undefined ? e.retryAfter * 1000 : token.vendor === 'apns' ? SENDER_FIRST_BACKOFF_MS : 0;
      const waited = next.at - e.at;
      const bucket = waits.get(kind) ?? { retryAfterMs: needMs, waitsMs: [] };
      bucket.waitsMs.push(waited);
      waits.set(kind, bucket);
      if (waited < needMs - TIMER_SLACK_MS) tooSoon.push(`${kind}: ${waited} ms < ${needMs} ms`);
      if (waited > needMs + LATE_MS) tooLate.push(`${kind}: ${waited} ms > ${needMs} + ${LATE_MS} ms`);
    });
    const last = list.at(-1);
    if (accepted > 0) continue;
    if (last !== undefined && !retryable(last.status as number)) refusedForGood += 1;
    else {
      lost += 1;
      if (lostExamples.length < 5) lostExamples.push(`${token.vendor} ${key}: ${JSON.stringify(list)}`);
    }
  }

  // Sends tried again with no refusal from APNs: their stream was refused by a GOAWAY, unprocessed.
  const retried = await fleet.database.db.query<{ message_id: string; token: string }>(
    `SELECT v.message_id, t.token FROM vendor_sends v JOIN device_vendor_tokens t ON t.device_id = v.device_id AND t.vendor = v.vendor
     WHERE v.vendor = 'apns' AND v.attempts > 1`,
  );
  const resentAfterGoaway = retried.rows.filter((r) => (events.get(pairKey(r.message_id, r.token)) ?? []).every((e) => e.accepted)).length;

  // The ledger agrees: sent where a vendor accepted, failed where it refused for good, nothing open.
  const ledger = await fleet.database.db.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM vendor_sends GROUP BY status`,
  );
  const statuses = Object.fromEntries(ledger.rows.map((r) => [r.status, r.n]));
  const expired = await fleet.database.db.query<{ id: string; expires_at: Date }>(
    'SELECT id, expires_at FROM messages WHERE id = ANY($1::uuid[])',
    [[...new Set([...due.keys()].map((k) => k.split('/')[0] as string))]],
  );
  const expiresAt = new Map(expired.rows.map((r) => [r.id, r.expires_at.getTime()]));
  let expiredShown = 0;
  for (const [key, list] of events) {
    const at = expiresAt.get(key.split('/')[0] as string) ?? Infinity;
    expiredShown += list.filter((e) => e.accepted && e.at > at).length;
  }

  // Connections: per app and vendor, those that carried its tokens, in all and at once.
  const connectionsOf = (vendor: Vendor) => {
    const byApp = apps.map(() => new Set<number>());
    for (const [key, list] of events) {
      const token = due.get(key) as Token;
      if (token.vendor !== vendor) continue;
      for (const e of list) byApp[token.app]?.add(e.connection);
    }
    const records = new Map(fakeOf(vendor).connections.map((c) => [c.id, c]));
    const peak = (ids: Set<number>) => peakOpen([...ids].map((id) => records.get(id) as Connection));
    const attributed = new Set(byApp.flatMap((ids) => [...ids]));
    return {
      accepted_by_fake: records.size,
      not_carrying_sends: records.size - attributed.size,
      per_app_total: byApp.map((ids) => ids.size),
      per_app_peak_open: byApp.map(peak),
    };
  };
  const connections = Object.fromEntries(VENDORS.map((v) => [v, connectionsOf(v)]));
  const waitFigures = Object.fromEntries(
    [...waits].map(([kind, w]) => [kind, { tries: w.waitsMs.length, required_ms: w.retryAfterMs, min_ms: Math.min(...w.waitsMs), p50_ms: quantile(w.waitsMs, 0.5), max_ms: Math.max(...w.waitsMs) }]),
  );
  const crashes = fleet.crashes();

  record('14-vendor-faults', {
    scenario: '14',
    title: 'Vendor faults: 410 with a timestamp, UNREGISTERED, 429, 503 with Retry-After, other 4xx, HTTP/2 GOAWAY',
    injected: {
      apps: APPS,
      devices: APPS * PER_VENDOR * VENDORS.length,
      rounds: ROUNDS,
      refusals: Object.fromEntries([...injected].sort()),
      apns_goaway_frames: fakes.apns.goaways.sent,
      apns_streams_refused_by_the_fake_after_goaway: fakes.apns.goaways.refusedStreams,
      fcm_connections_closed: fakes.fcm.goaways.sent,
    },
    messages_checked: due.size,
    lost,
    duplicates_shown: duplicates,
    expired_shown: expiredShown,
    crashes,
    detail: {
      duplicates_counted: 'vendor acceptances of one message for one token beyond the first, before the device collapses copies by the message id (APNs collapse id, FCM and Huawei tag, Xiaomi notify_id)',
      apns_resent_after_goaway: resentAfterGoaway,
      refused_for_good: refusedForGood,
      retried_after_a_final_refusal: retriedAfterFinal,
      tokens_killed: expectDead.size,
      apns_tokens_kept_after_older_410: expectKept.size,
      ledger: statuses,
      waits_after_refusal: waitFigures,
      waits_too_soon: tooSoon,
      waits_too_late: tooLate,
      connections,
      connections_per_host_cap: CONNECTIONS_PER_HOST,
      rounds,
      lost_examples: lostExamples,
      duplicates_by_vendor: duplicatesByVendor,
      duplicate_examples: duplicateExamples,
      unexpected_sends: unexpected,
    },
  });

  expect(crashes).toBe(0);
  expect(lostExamples).toEqual([]);
  expect(lost).toBe(0);
  expect(duplicates).toBe(0);
  expect(expiredShown).toBe(0);
  expect(unexpected).toBe(0);
  // No retry after an answer that says a retry will not help (other 4xx, a dead token).
  expect(retriedAfterFinal).toBe(0);
  expect(tooSoon).toEqual([]);
  expect(tooLate).toEqual([]);
  expect(statuses).toEqual({ sent: due.size - refusedForGood, failed: refusedForGood });
  // Every fault was answered as scripted (each vendor's first try of a token took its rule).
  expect(injected.get('apns_410_Unregistered')).toBe(2 * K * APPS);
  expect(injected.get('apns_429_TooManyRequests')).toBe(K * APPS * ROUNDS);
  expect(injected.get('apns_503_ServiceUnavailable')).toBe(K * APPS * ROUNDS);
  expect(injected.get('fcm_404_UNREGISTERED')).toBe(K * APPS);
  expect(injected.get('fcm_503_UNAVAILABLE')).toBe(K * APPS * ROUNDS);
  expect(injected.get('fcm_429_QUOTA_EXCEEDED')).toBe(FCM_QUOTA_PER_APP > 0 ? FCM_QUOTA_PER_APP * APPS : undefined);
  expect(injected.get('huawei_400_80300007')).toBe(K * APPS);
  expect(injected.get('xiaomi_200_20301')).toBe(K * APPS);
  expect(fakes.apns.goaways.sent).toBeGreaterThanOrEqual(ROUNDS - 1);
  // The racing GOAWAYs refused streams the sender had sent: they were sent again (and reached APNs once).
  expect(resentAfterGoaway).toBeGreaterThanOrEqual(ROUNDS - 1);
  // Connections: APNs one per app, and one more per GOAWAY at most; the HTTP/1.1 vendors at most
  // CONNECTIONS_PER_HOST open at once per app.
  for (const total of connections.apns?.per_app_total ?? []) expect(total).toBeLessThanOrEqual(1 + fakes.apns.goaways.sent);
  for (const peak of connections.apns?.per_app_peak_open ?? []) expect(peak).toBeLessThanOrEqual(2);
  for (const vendor of ['fcm', 'huawei', 'xiaomi'] as const) {
    for (const peak of connections[vendor]?.per_app_peak_open ?? []) expect(peak).toBeLessThanOrEqual(CONNECTIONS_PER_HOST);
  }
}, sized(180_000, 1_800_000));

/** The most connections open at one moment. */
function peakOpen(records: Connection[]): number {
  const edges = records.flatMap((c) => [
    { at: c.opened, d: 1 },
    { at: c.closed ?? Infinity, d: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.d - b.d);
  let open = 0;
  let peak = 0;
  for (const e of edges) {
    open += e.d;
    peak = Math.max(peak, open);
  }
  return peak;
}
