/**
 * The vendor sender: takes push jobs from the JetStream work queue, works out which devices of the
 * target need a vendor send, sends through the app's vendor clients and records each result per
 * (message, device) in vendor_sends, the ledger shared by every sender process.
 *
 * A send is claimed ('sending') before it goes out and settled after: a redelivered job (a crash, a
 * retry) skips what is settled and sends again only what was claimed and never settled; a job whose
 * sends another sender claimed lately waits until that claim is settled or stale. Retryable
 * errors nak the job with backoff (or the vendor's Retry-After) until SENDER_MAX_ATTEMPTS.
 */
import { AckPolicy, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  consumeInBatches,
  groupBy,
  CONTROL_HEADER,
  decodeVendorJob,
  encodeVendorJob,
  PRESENCE_QUERY,
  publishEvent,
  selectionSql,
  storedSelection,
  type ChannelPolicy,
  type Db,
  type EventKind,
  type Logger,
  type MessageContent,
  type NatsConnection,
  type PushType,
  type Subjects,
  type Vendor,
  type VendorJob,
  vendorJobId,
  type VendorOptions,
} from '@mps/shared';
import type { VendorClients } from './clients.js';
import type { VendorRates } from './rate.js';
import type { OutgoingMessage, SendResult } from './vendors/types.js';

/** Which vendor reaches a device, by platform, in order of preference among its live tokens. */
const PREFERENCE: Record<string, Vendor[]> = {
  ios: ['apns', 'fcm'],
  android: ['huawei', 'xiaomi', 'fcm'],
  harmony: ['huawei'],
  web: ['fcm'],
};

/** Devices of a broadcast handled per job; the next page is a job of its own. */
const BROADCAST_PAGE = 500;
/** A job whose message is not in Postgres yet (its transaction still committing) waits this long. */
const UNCOMMITTED_GRACE_MS = 60_000;
const MAX_BACKOFF_MS = 5 * 60_000;

export interface SenderDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  db: Db;
  subjects: Subjects;
  clients: VendorClients;
  log: Logger;
  batch: number;
  maxAttempts: number;
  presenceTimeoutMs: number;
  /** How long a taken job is the sender's before JetStream gives it to another (progress is signalled meanwhile). */
  ackWaitMs?: number;
  /** The operator's per-vendor rates for this process. */
  rates?: VendorRates;
}

interface StoredMessage extends OutgoingMessage {
  app: string;
  policy: ChannelPolicy;
  revoked: boolean;
  /** A broadcast's selection and spread, as stored. */
  target: { audience?: unknown; condition?: unknown; seenAfter?: unknown; spreadMs?: unknown };
  createdAt: Date;
  /** Devices a broadcast selected when it was accepted. */
  targeted: number | null;
}

interface Candidate {
  job: number;
  device: string;
  platform: string;
  os_version: string | null;
  app_version: string | null;
  sdk_version: string | null;
  vendor: Vendor;
  token: string;
  inbox: string | null;
  settled: string | null;
}

interface Send {
  job: number;
  message: StoredMessage;
  device: Candidate;
  vendor: Vendor;
  attempts: number;
  result?: SendResult;
}

export interface Sender {
  stop(): Promise<void>;
}

/**
 * One delivery per job: a job whose ack wait ran out while it waited in the client's buffer comes
 * again, and both deliveries can land in one batch (their sends would be claimed twice in one
 * statement, which PostgreSQL refuses). The latest stands for the job; the earlier is left alone.
 */
function latestDeliveries(batch: JsMsg[]): JsMsg[] {
  const latest = new Map<number, JsMsg>();
  for (const msg of batch) {
    const seen = latest.get(msg.seq);
    if (seen === undefined || msg.info.deliveryCount > seen.info.deliveryCount) latest.set(msg.seq, msg);
  }
  return latest.size === batch.length ? batch : [...latest.values()];
}

export const backoffMs = (attempts: number): number => Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.max(0, attempts - 1));

export async function startSender(deps: SenderDeps): Promise<Sender> {
  const { db, subjects, log } = deps;
  const ackWaitMs = deps.ackWaitMs ?? 30_000;
  const durable = `${subjects.vendorStream}_SENDER`;
  const jsm = await jetstreamManager(deps.nc);
  await jsm.consumers.add(subjects.vendorStream, {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ackWaitMs * 1e6,
    max_ack_pending: 20 * deps.batch,
  });
  const consumer = await deps.js.consumers.get(subjects.vendorStream, durable);
  /** Until when a vendor of an app asked us to wait (Retry-After, rate limits). */
  const pausedUntil = new Map<string, number>();

  async function loadMessages(ids: string[]): Promise<Map<string, StoredMessage>> {
    const r = await db.query<{
      id: string;
      app_id: string;
      push_type: PushType;
      content: MessageContent;
      expires_at: Date;
      revoked_at: Date | null;
      channel_policy: ChannelPolicy;
      vendor_options: VendorOptions | null;
      target: StoredMessage['target'];
      created_at: Date;
      targeted: number | null;
    }>(
      `SELECT id, app_id, push_type, content, expires_at, revoked_at, channel_policy, vendor_options, target, created_at, targeted
       FROM messages WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    return new Map(
      r.rows.map((m) => [
        m.id,
        {
          id: m.id,
          app: m.app_id,
          pushType: m.push_type,
          content: m.content,
          expiresAt: m.expires_at,
          options: m.vendor_options ?? {},
          policy: m.channel_policy,
          revoked: m.revoked_at !== null,
          target: m.target,
          createdAt: m.created_at,
          targeted: m.targeted,
        },
      ]),
    );
  }

  /** Every device of each device or user job with a live vendor token, what its inbox says and what was sent. */
  async function loadCandidates(jobs: { n: number; job: VendorJob }[]): Promise<Candidate[]> {
    const targeted = jobs.filter(({ job }) => !('broadcast' in job));
    if (targeted.length === 0) return [];
    const r = await db.query<Candidate>(
      `WITH j AS (SELECT * FROM unnest($1::int[], $2::text[], $3::uuid[], $4::text[], $5::uuid[]) AS j(n, app, device, usr, message)),
            d AS (SELECT j.n, j.message, d.* FROM j JOIN devices d ON d.id = j.device AND d.app_id = j.app
                  UNION ALL
                  SELECT j.n, j.message, d.* FROM j JOIN devices d ON d.app_id = j.app AND d.user_id = j.usr)
       SELECT d.n AS job, d.id AS device, d.platform, d.os_version, d.app_version, d.sdk_version, t.vendor, t.token,
              i.status AS inbox, v.status AS settled
       FROM d JOIN device_vendor_tokens t ON t.device_id = d.id AND t.dead_at IS NULL
       LEFT JOIN inbox i ON i.device_id = d.id AND i.message_id = d.message
       LEFT JOIN vendor_sends v ON v.device_id = d.id AND v.message_id = d.message
       ORDER BY d.n, d.id`,
      [
        targeted.map(({ n }) => n),
        targeted.map(({ job }) => job.app),
        targeted.map(({ job }) => ('device' in job ? job.device : null)),
        targeted.map(({ job }) => ('user' in job ? job.user : null)),
        targeted.map(({ job }) => job.message),
      ],
    );
    return r.rows;
  }

  /**
   * The next page of devices a broadcast selects that have a live vendor token, after `after`.
   * A device whose broadcast cursor reached the message acked it over the socket ('delivered').
   */
  async function loadBroadcastPage(n: number, message: StoredMessage, after: string | null): Promise<{ candidates: Candidate[]; last: string | null; full: boolean }> {
    const params: unknown[] = [message.app, message.id, after, BROADCAST_PAGE];
    const where = ['d.app_id = $1', '($3::uuid IS NULL OR d.id > $3)', ...selectionSql(storedSelection(message.target), params)];
    const r = await db.query<Candidate>(
      `WITH page AS (
         SELECT d.* FROM devices d LEFT JOIN user_profiles up ON up.app_id = d.app_id AND up.user_id = d.user_id
         WHERE ${where.join(' AND ')} AND EXISTS (SELECT 1 FROM device_vendor_tokens t WHERE t.device_id = d.id AND t.dead_at IS NULL)
         ORDER BY d.id LIMIT $4)
       SELECT ${n} AS job, p.id AS device, p.platform, p.os_version, p.app_version, p.sdk_version, t.vendor, t.token,
              CASE WHEN p.broadcast_cursor >= $2::uuid THEN 'delivered' END AS inbox, v.status AS settled
       FROM page p JOIN device_vendor_tokens t ON t.device_id = p.id AND t.dead_at IS NULL
       LEFT JOIN vendor_sends v ON v.device_id = p.id AND v.message_id = $2
       ORDER BY p.id`,
      params,
    );
    const devices = new Set(r.rows.map((c) => c.device));
    return { candidates: r.rows, last: r.rows.at(-1)?.device ?? null, full: devices.size === BROADCAST_PAGE };
  }

  /**
   * When a broadcast's page may start: at once, or with a spread window, at the share of the window
   * that the devices before it are of those the broadcast selected.
   */
  function pageDueAt(message: StoredMessage, page: number): number {
    const spreadMs = typeof message.target.spreadMs === 'number' ? message.target.spreadMs : 0;
    const share = Math.min(1, (page * BROADCAST_PAGE) / Math.max(1, message.targeted ?? 0));
    return message.createdAt.getTime() + spreadMs * share;
  }

  /** Whether a gateway holds a ready socket of the device (no responders: it does not). */
  async function connected(app: string, device: string): Promise<boolean> {
    const h = natsHeaders();
    h.set(CONTROL_HEADER, PRESENCE_QUERY);
    try {
      await deps.nc.request(subjects.device(app, device), new Uint8Array(0), { timeout: deps.presenceTimeoutMs, headers: h });
      return true;
    } catch {
      return false;
    }
  }

  /** The vendor that reaches this device: the first of its platform's preference with a token and a channel. */
  async function choose(app: string, tokens: Candidate[]): Promise<Candidate | undefined> {
    const platform = tokens[0]?.platform ?? '';
    for (const vendor of PREFERENCE[platform] ?? []) {
      const candidate = tokens.find((t) => t.vendor === vendor);
      if (candidate && (await deps.clients.get(app, vendor))) return candidate;
    }
    return undefined;
  }

  /** What needs a vendor send, per job; records 'skipped' for devices the socket has or will have. */
  async function plan(jobs: VendorJob[], candidates: Candidate[], messages: Map<string, StoredMessage>): Promise<Send[]> {
    const byDevice = [...groupBy(candidates, (c) => `${c.job}/${c.device}`).values()];
    const sends: Send[] = [];
    const skipped: { message: string; device: string; vendor: Vendor; reason: string }[] = [];
    await Promise.all(
      byDevice.map(async (tokens) => {
        const first = tokens[0] as Candidate;
        const job = jobs[first.job] as VendorJob;
        const message = messages.get(job.message);
        if (!message || message.revoked || message.expiresAt.getTime() <= Date.now() || message.policy === 'socket') return;
        if (first.settled !== null && first.settled !== 'sending' && first.settled !== 'retry') return;
        const chosen = await choose(job.app, tokens);
        if (!chosen) return;
        if (first.inbox === 'delivered') {
          skipped.push({ message: message.id, device: first.device, vendor: chosen.vendor, reason: 'acked over the socket' });
        } else if (message.policy === 'auto' && (await connected(job.app, first.device))) {
          skipped.push({ message: message.id, device: first.device, vendor: chosen.vendor, reason: 'connected: the socket delivers it' });
        } else {
          sends.push({ job: first.job, message, device: chosen, vendor: chosen.vendor, attempts: 0 });
        }
      }),
    );
    if (skipped.length > 0) {
      await db.query(
        `INSERT INTO vendor_sends (message_id, device_id, vendor, status, reason, attempts)
         SELECT message_id, device_id, vendor, 'skipped', reason, 0 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS s(message_id, device_id, vendor, reason)
         ON CONFLICT (message_id, device_id) DO UPDATE SET status = 'skipped', reason = EXCLUDED.reason, updated_at = now()
         WHERE vendor_sends.status IN ('sending', 'retry')`,
        [skipped.map((s) => s.message), skipped.map((s) => s.device), skipped.map((s) => s.vendor), skipped.map((s) => s.reason)],
      );
    }
    return sends;
  }

  /**
   * Claims the sends nobody settled or is making: new ones, ones waiting for a retry, and ones a
   * crashed sender claimed longer ago than the ack wait. Returns those claimed, with their attempts.
   */
  async function claim(sends: Send[]): Promise<Send[]> {
    if (sends.length === 0) return [];
    const r = await db.query<{ message_id: string; device_id: string; attempts: number }>(
      `INSERT INTO vendor_sends (message_id, device_id, vendor, status)
       SELECT * , 'sending' FROM unnest($1::uuid[], $2::uuid[], $3::text[])
       ON CONFLICT (message_id, device_id) DO UPDATE SET status = 'sending', vendor = EXCLUDED.vendor,
         attempts = vendor_sends.attempts + 1, updated_at = now()
       WHERE vendor_sends.status = 'retry'
          OR (vendor_sends.status = 'sending' AND vendor_sends.updated_at < now() - $4 * interval '1 millisecond')
       RETURNING message_id, device_id, attempts`,
      [sends.map((s) => s.message.id), sends.map((s) => s.device.device), sends.map((s) => s.vendor), ackWaitMs],
    );
    const attempts = new Map(r.rows.map((row) => [`${row.message_id}/${row.device_id}`, row.attempts]));
    return sends.flatMap((s) => {
      const n = attempts.get(`${s.message.id}/${s.device.device}`);
      return n === undefined ? [] : [{ ...s, attempts: n }];
    });
  }

  /** One client call per (app, vendor, message), all at once. */
  async function deliver(sends: Send[]): Promise<void> {
    const groups = [...groupBy(sends, (s) => `${s.message.app}\u0000${s.vendor}\u0000${s.message.id}`).values()];
    await Promise.all(
      groups.map(async (group) => {
        const { message, vendor } = group[0] as Send;
        const pauseKey = `${message.app}\u0000${vendor}`;
        const wait = (pausedUntil.get(pauseKey) ?? 0) - Date.now();
        const client = await deps.clients.get(message.app, vendor);
        let results: SendResult[];
        if (wait > 0) results = group.map(() => ({ status: 'retry', reason: 'vendor asked to wait', retryAfterMs: wait }));
        else if (!client) results = group.map(() => ({ status: 'failed', reason: `the ${vendor} channel was removed` }));
        else {
          try {
            await deps.rates?.take(vendor, group.length);
            results = await client.send(message, group.map((s) => s.device.token));
          } catch (error) {
            log.error({ err: error, vendor, app: message.app }, 'vendor client failed');
            results = group.map(() => ({ status: 'retry', reason: (error as Error).message }));
          }
        }
        group.forEach((s, i) => {
          s.result = results[i] ?? { status: 'retry', reason: 'no result from the client' };
          if (s.result.status === 'retry' && s.result.retryAfterMs !== undefined && wait <= 0) {
            pausedUntil.set(pauseKey, Math.max(pausedUntil.get(pauseKey) ?? 0, Date.now() + s.result.retryAfterMs));
          }
        });
      }),
    );
  }

  /**
   * Kills the tokens a vendor called invalid, unless the device registered the token again after
   * the vendor's time for it (APNs' 410 timestamp: Apple says to keep such a token). Returns the
   * sends whose token was kept.
   */
  async function killTokens(dead: Send[]): Promise<Set<Send>> {
    if (dead.length === 0) return new Set();
    const r = await db.query<{ n: number }>(
      `WITH u AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                  WITH ORDINALITY AS u(device_id, vendor, token, reason, since, n)),
            -- A token dead already keeps when and why it died first.
            killed AS (UPDATE device_vendor_tokens t
                       SET dead_at = COALESCE(t.dead_at, now()), dead_reason = COALESCE(t.dead_reason, u.reason) FROM u
                       WHERE t.device_id = u.device_id AND t.vendor = u.vendor AND t.token = u.token
                         AND (u.since IS NULL OR t.updated_at < u.since))
       SELECT u.n FROM u JOIN device_vendor_tokens t ON t.device_id = u.device_id AND t.vendor = u.vendor AND t.token = u.token
       WHERE t.updated_at >= u.since`,
      [
        dead.map((s) => s.device.device),
        dead.map((s) => s.vendor),
        dead.map((s) => s.device.token),
        dead.map((s) => (s.result as { reason: string }).reason),
        dead.map((s) => (s.result as { since?: Date }).since ?? null),
      ],
    );
    const kept = new Set(r.rows.map((row) => Number(row.n)));
    return new Set(dead.filter((_, i) => kept.has(i + 1)));
  }

  /** Settles results in the ledger, kills dead tokens, and tells analytics and receipts. */
  async function settle(sends: Send[]): Promise<void> {
    // Dead tokens first: once a result is visible, so is what it did to the token.
    const kept = await killTokens(sends.filter((s) => s.result?.status === 'invalid-token'));
    const outcomes = sends.map((s): { s: Send; status: 'sent' | 'failed' | 'retry'; reason: string | null } => {
      const r = s.result as SendResult;
      if (r.status === 'sent') return { s, status: 'sent', reason: null };
      if (r.status === 'retry') {
        return s.attempts >= deps.maxAttempts
          ? { s, status: 'failed', reason: `gave up after ${s.attempts} attempts: ${r.reason}` }
          : { s, status: 'retry', reason: r.reason };
      }
      if (r.status !== 'invalid-token') return { s, status: 'failed', reason: r.reason };
      const note = kept.has(s) ? ' (token kept: registered again after the vendor found it invalid)' : '';
      return { s, status: 'failed', reason: `invalid token: ${r.reason}${note}` };
    });
    if (outcomes.length > 0) {
      await db.query(
        `UPDATE vendor_sends v SET status = u.status, reason = u.reason, updated_at = now()
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS u(message_id, device_id, status, reason)
         WHERE v.message_id = u.message_id AND v.device_id = u.device_id`,
        [outcomes.map((o) => o.s.message.id), outcomes.map((o) => o.s.device.device), outcomes.map((o) => o.status), outcomes.map((o) => o.reason)],
      );
    }
    const final = outcomes.filter((o) => o.status !== 'retry');
    const at = Date.now();
    await Promise.all(
      final.map(({ s, status }) => {
        const kind: EventKind = status === 'sent' ? 'sent' : 'failed';
        return publishEvent(deps.js, subjects, {
          // Fixed per (message, device, kind): a replayed settle is one event in ClickHouse.
          id: `vendor.${s.message.id}.${s.device.device}.${kind}`,
          kind,
          app: s.message.app,
          message: s.message.id,
          device: s.device.device,
          channel: s.vendor,
          platform: s.device.platform,
          osVersion: s.device.os_version ?? '',
          appVersion: s.device.app_version ?? '',
          sdkVersion: s.device.sdk_version ?? '',
          pushType: s.message.pushType,
          at,
        });
      }),
    );
  }

  async function handle(batch: JsMsg[]): Promise<void> {
    const jobs: { msg: JsMsg; job: VendorJob }[] = [];
    for (const msg of latestDeliveries(batch)) {
      const job = decodeVendorJob(msg.data);
      if (job) jobs.push({ msg, job });
      else {
        log.warn({ seq: msg.seq }, 'malformed vendor job dropped');
        msg.term();
      }
    }
    if (jobs.length === 0) return;
    const messages = await loadMessages([...new Set(jobs.map((j) => j.job.message))]);
    const numbered = jobs.map(({ job }, n) => ({ n, job }));
    const pages = new Map<number, { last: string | null; full: boolean }>();
    /** Broadcast pages not due yet (spread over a window): ms to wait. */
    const early = new Map<number, number>();
    const candidates = await loadCandidates(numbered);
    await Promise.all(
      numbered.map(async ({ n, job }) => {
        const message = messages.get(job.message);
        if (!('broadcast' in job) || !message) return;
        const wait = pageDueAt(message, job.broadcast.page ?? 0) - Date.now();
        if (wait > 0) return early.set(n, wait);
        const page = await loadBroadcastPage(n, message, job.broadcast.after);
        pages.set(n, page);
        candidates.push(...page.candidates);
      }),
    );
    const planned = await plan(numbered.map(({ job }) => job), candidates, messages);
    const sends = await claim(planned);
    // Planned but not claimed: settled meanwhile, or claimed by a sender that may have died with it
    // (the claim is younger than the ack wait). The job comes back when such a claim is stale.
    const claimed = new Set(sends.map((s) => `${s.message.id}/${s.device.device}`));
    const contested = new Set(planned.filter((s) => !claimed.has(`${s.message.id}/${s.device.device}`)).map((s) => s.job));
    await deliver(sends);
    await settle(sends);

    for (const [n, { msg, job }] of jobs.entries()) {
      if (!messages.has(job.message)) {
        // Published inside the push's transaction: the commit may not be visible yet, or it rolled back.
        const age = Date.now() - Number(msg.info.timestampNanos / 1_000_000);
        if (age < UNCOMMITTED_GRACE_MS) msg.nak(1000);
        else msg.term();
        continue;
      }
      const wait = early.get(n);
      if (wait !== undefined) {
        msg.nak(wait);
        continue;
      }
      const page = pages.get(n);
      if (page?.full && page.last !== null && 'broadcast' in job) {
        // The next page goes on (even while this one waits for a retry), queued before this job is
        // acked: a crash in between replays this page, whose settled sends are skipped, and the
        // next page's job is deduplicated.
        const next: VendorJob = { app: job.app, message: job.message, broadcast: { after: page.last, page: (job.broadcast.page ?? 0) + 1 } };
        await deps.js.publish(subjects.vendorJob(job.app), encodeVendorJob(next), { msgID: vendorJobId(next) });
      }
      const retries = sends.filter((s) => s.job === n && s.result?.status === 'retry' && s.attempts < deps.maxAttempts);
      if (retries.length > 0 || contested.has(n)) {
        const retryMs = retries.map((s) => Math.max(backoffMs(s.attempts), (s.result as { retryAfterMs?: number }).retryAfterMs ?? 0));
        msg.nak(Math.max(contested.has(n) ? ackWaitMs : 0, ...retryMs));
        continue;
      }
      msg.ack();
    }
  }

  /** Handles a batch, telling JetStream meanwhile that the jobs are being worked on. */
  async function work(batch: JsMsg[]): Promise<void> {
    // Slow vendors must not let the jobs go to another sender mid-send.
    const progress = setInterval(() => batch.forEach((m) => m.working()), Math.max(100, ackWaitMs / 3));
    try {
      await handle(batch);
    } finally {
      clearInterval(progress);
    }
  }

  const consuming = await consumeInBatches(consumer, deps.batch, work, log);

  return {
    stop: () => consuming.stop(),
  };
}
