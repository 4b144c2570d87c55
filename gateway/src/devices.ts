/** The gateway's view of devices in Postgres: register, authenticate, bind, report, and what is pending. */
import { createHash } from 'node:crypto';
import {
  ADD_TO_GAPS_SQL,
  groupBy,
  groupCommit,
  storedSelection,
  type DeviceFact,
  type DeviceProfile,
  type Profile,
  userProfile,
  encodeMessage,
  FrameType,
  isUuid,
  tokenIssuedAt,
  newId,
  newSecret,
  type AuthFrame,
  type Gap,
  type Db,
  type MessageContent,
  type Platform,
  type PushType,
  type RegisterFrame,
  type Selection,
  type Vendor,
} from '@mps/shared';

/** A connected device, as its socket knows it; also what broadcast conditions are evaluated against. */
export interface Device extends DeviceProfile {
  id: string;
  app: string;
  userId: string | null;
  facts: Record<DeviceFact, string> & { platform: Platform };
  /** The device's own tags and attributes, and its user's; `tags` / `attributes` are their merge. */
  own: Profile;
  user: Profile;
  tags: ReadonlySet<string>;
  attributes: Readonly<Record<string, string>>;
  tagsWritable: boolean;
  /** The newest broadcast this device has acked (null: none yet). */
  broadcastCursor: string | null;
  /** When it was last seen before this connection (ms): for broadcasts to devices seen within a period. */
  seenBefore: number;
}

export interface StoredBroadcast extends Selection {
  id: string;
  frame: Uint8Array;
}

/** An inbox row that left 'pending' when its device connected. */
export interface SettledRow {
  device_id: string;
  message_id: string;
  status: 'expired' | 'dropped';
  push_type: PushType;
}

export type AuthResult = { device: Device; secret?: string } | { failure: 'unknown_app' | 'bad_credentials' };

const hashSecret = (secret: string): Buffer => createHash('sha256').update(secret).digest();

function factsOf(frame: RegisterFrame | AuthFrame) {
  return [
    frame.platform,
    frame.osVersion ?? null,
    frame.appVersion ?? null,
    frame.sdkVersion ?? null,
    frame.locale ?? null,
    frame.timezone ?? null,
  ];
}

interface DeviceRow {
  user_id: string | null;
  tags: string[];
  attributes: Record<string, string>;
  user_tags: string[] | null;
  user_attributes: Record<string, string> | null;
  device_tags_writable: boolean;
  broadcast_cursor: string | null;
  seen_before: Date;
}

// A gateway holds tens of thousands of devices, most without tags or attributes, whose facts repeat
// (versions, locales, time zones): they share one empty set, one empty profile, one copy of a value.
const NO_TAGS: ReadonlySet<string> = new Set();
const NO_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});
const NO_PROFILE: Profile = { tags: [], attributes: NO_ATTRIBUTES };
const INTERNED_VALUES = 10_000;
const interned = new Map<string, string>();

/** The one copy of a value that many devices carry (the first INTERNED_VALUES distinct ones). */
export function intern(value: string): string {
  const known = interned.get(value);
  if (known !== undefined) return known;
  if (interned.size < INTERNED_VALUES) interned.set(value, value);
  return value;
}

const isEmpty = (attributes: Readonly<Record<string, string>>): boolean => Object.keys(attributes).length === 0;

const profileOf = (tags: string[] | null, attributes: Record<string, string> | null): Profile =>
  (tags ?? []).length === 0 && isEmpty(attributes ?? NO_ATTRIBUTES) ? NO_PROFILE : { tags: tags ?? [], attributes: attributes ?? {} };

/** Conditions see the union of the device's and its user's tags; the user's attribute values win. */
export function setProfiles(device: Device, own: Profile, user: Profile): void {
  device.own = own;
  device.user = user;
  device.tags = own.tags.length + user.tags.length === 0 ? NO_TAGS : new Set([...own.tags, ...user.tags]);
  device.attributes = isEmpty(own.attributes) && isEmpty(user.attributes) ? NO_ATTRIBUTES : { ...own.attributes, ...user.attributes };
}

function deviceOf(frame: RegisterFrame | AuthFrame, id: string, row: DeviceRow): Device {
  const device: Device = {
    id,
    app: intern(frame.app),
    userId: row.user_id,
    facts: {
      platform: intern(frame.platform) as Platform,
      osVersion: intern(frame.osVersion ?? ''),
      appVersion: intern(frame.appVersion ?? ''),
      sdkVersion: intern(frame.sdkVersion ?? ''),
      locale: intern(frame.locale ?? ''),
      timezone: intern(frame.timezone ?? ''),
    },
    own: NO_PROFILE,
    user: NO_PROFILE,
    tags: NO_TAGS,
    attributes: NO_ATTRIBUTES,
    tagsWritable: row.device_tags_writable,
    broadcastCursor: row.broadcast_cursor,
    seenBefore: row.seen_before.getTime(),
  };
  setProfiles(device, profileOf(row.tags, row.attributes), profileOf(row.user_tags, row.user_attributes));
  return device;
}

/**
 * Records the current facts of the devices connecting together; a device's row comes back only if
 * its secret hash matches (or none is given: a token already verified) and its credentials were not
 * revoked, or it brings a connect token issued after the second of the revocation (the rule of
 * issuedAfterRevocation). The subquery in RETURNING reads the statement's snapshot: last_seen_at as
 * it was before this connection.
 */
const UPDATE_FACTS = `
  UPDATE devices d SET platform = v.platform, os_version = v.os_version, app_version = v.app_version,
         sdk_version = v.sdk_version, locale = v.locale, timezone = v.timezone, last_seen_at = now()
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::float8[])
         AS v(id, app, platform, os_version, app_version, sdk_version, locale, timezone, hash, issued_at),
       apps a
  WHERE d.id = v.id AND d.app_id = v.app AND a.id = d.app_id AND (v.hash IS NULL OR d.secret_hash = v.hash)
    AND (d.revoked_at IS NULL OR (v.hash IS NULL AND to_timestamp(v.issued_at) > d.revoked_at))
  RETURNING d.id, d.user_id, d.tags, d.attributes, a.device_tags_writable, d.broadcast_cursor,
    (SELECT p.last_seen_at FROM devices p WHERE p.id = d.id) AS seen_before,
    (SELECT up.tags FROM user_profiles up WHERE up.app_id = d.app_id AND up.user_id = d.user_id) AS user_tags,
    (SELECT up.attributes FROM user_profiles up WHERE up.app_id = d.app_id AND up.user_id = d.user_id) AS user_attributes`;

interface FactsUpdate {
  frame: RegisterFrame | AuthFrame;
  device: string;
  hash: Buffer | null;
  /** The `iat` (s) of the connect token, for a device authenticating with one. */
  issuedAt: number | null;
}

export interface PendingFrame {
  device: string;
  id: string;
  pushType: PushType;
  frame: Uint8Array;
}

export class DeviceStore {
  /** Devices authenticating together share one statement. */
  private readonly updateFacts = groupCommit((updates: FactsUpdate[]) => this.writeFacts(updates), { maxItems: 256, concurrency: 2 });

  constructor(private readonly db: Db) {}

  /** Each update's row, or null (unknown device, wrong app or secret); a device twice waits for its first. */
  private async writeFacts(updates: FactsUpdate[]): Promise<(DeviceRow | null)[]> {
    const seen = new Set<string>();
    const first = updates.filter((u) => !seen.has(u.device) && seen.add(u.device));
    const facts = first.map((u) => factsOf(u.frame));
    const r = await this.db.query<DeviceRow & { id: string }>(UPDATE_FACTS, [
      first.map((u) => u.device),
      first.map((u) => u.frame.app),
      ...Array.from({ length: 6 }, (_, i) => facts.map((f) => f[i])),
      first.map((u) => u.hash),
      first.map((u) => u.issuedAt),
    ]);
    const rows = new Map(r.rows.map((row) => [row.id, row]));
    const again = updates.filter((u) => !first.includes(u));
    const later = again.length > 0 ? await this.writeFacts(again) : [];
    return updates.map((u) => (first.includes(u) ? (rows.get(u.device) ?? null) : (later[again.indexOf(u)] ?? null)));
  }

  /** A new device, or an existing one that proves its secret (it keeps its id). */
  async register(frame: RegisterFrame): Promise<AuthResult> {
    if (frame.device !== undefined || frame.secret !== undefined) {
      if (frame.device === undefined || frame.secret === undefined) return { failure: 'bad_credentials' };
      return this.authenticate(frame, frame.device, frame.secret);
    }
    const app = await this.db.query<{ device_tags_writable: boolean }>('SELECT device_tags_writable FROM apps WHERE id = $1', [
      frame.app,
    ]);
    const appRow = app.rows[0];
    if (!appRow) return { failure: 'unknown_app' };
    const id = newId();
    const secret = newSecret();
    // Broadcasts sent before the device existed are not for it: its cursor starts at its own id.
    await this.db.query(
      `INSERT INTO devices (id, app_id, secret_hash, platform, os_version, app_version, sdk_version, locale, timezone, broadcast_cursor)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $1)`,
      [id, frame.app, hashSecret(secret), ...factsOf(frame)],
    );
    return { device: deviceOf(frame, id, { user_id: null, tags: [], attributes: {}, user_tags: null, user_attributes: null, broadcast_cursor: id, seen_before: new Date(), ...appRow }), secret };
  }

  /** Checks the device's secret (or, with `secret` null, the frame's connect token, already verified) and records its facts. */
  async authenticate(frame: RegisterFrame | AuthFrame, deviceId: string, secret: string | null): Promise<AuthResult> {
    if (!isUuid(deviceId)) return { failure: 'bad_credentials' };
    const token = secret === null && frame.t === FrameType.AUTH ? frame.token : undefined;
    const row = await this.updateFacts({
      frame,
      device: deviceId,
      hash: secret === null ? null : hashSecret(secret),
      issuedAt: token === undefined ? null : (tokenIssuedAt(token) ?? null),
    });
    if (!row) return { failure: 'bad_credentials' };
    return { device: deviceOf(frame, deviceId, row) };
  }

  async bind(device: Device, userId: string | null): Promise<void> {
    await this.db.query('UPDATE devices SET user_id = $2 WHERE id = $1', [device.id, userId]);
  }

  /**
   * Copies the user's unexpired, unrevoked messages into the device's inbox (a device bound later
   * still gets them); the ones it already has are left as they are.
   */
  async adoptUserMessages(device: Device): Promise<void> {
    if (device.userId === null) return;
    await this.db.query(
      `INSERT INTO inbox (device_id, message_id, expires_at)
       SELECT $1, u.message_id, u.expires_at
       FROM user_inbox u JOIN messages m ON m.id = u.message_id
       WHERE u.app_id = $2 AND u.user_id = $3 AND u.expires_at > now() AND m.revoked_at IS NULL
       ORDER BY m.created_at
       ON CONFLICT (device_id, message_id) DO NOTHING`,
      [device.id, device.app, device.userId],
    );
  }

  async setVendorToken(device: Device, vendor: Vendor, token: string): Promise<void> {
    await this.db.query(
      `INSERT INTO device_vendor_tokens (device_id, vendor, token) VALUES ($1, $2, $3)
       -- A token the vendor refused is used again once the device reports it again, the same or
       -- another: the app holds it now (APNs gives an uninstalled and reinstalled app its old token,
       -- and keeps a token reported after its 410's time). Still dead, it is killed at its next send.
       ON CONFLICT (device_id, vendor) DO UPDATE SET token = EXCLUDED.token, updated_at = now(), dead_at = NULL, dead_reason = NULL`,
      [device.id, vendor, token],
    );
  }

  /** Reads the device's own and its user's tags and attributes again (after a bind, or an API change). */
  async reloadProfiles(device: Device): Promise<void> {
    const r = await this.db.query<Profile>('SELECT tags, attributes FROM devices WHERE id = $1', [device.id]);
    const own = r.rows[0] ?? NO_PROFILE;
    const user = device.userId === null ? NO_PROFILE : await userProfile(this.db, device.app, device.userId);
    setProfiles(device, profileOf(own.tags, own.attributes), profileOf(user.tags, user.attributes));
  }

  /**
   * For each device, the unexpired, unrevoked broadcasts of its app after its cursor (at most
   * `limit`, oldest first), in one query; each broadcast's frame is encoded once.
   */
  async broadcastsAfter(devices: Device[], limit: number): Promise<Map<string, StoredBroadcast[]>> {
    const result = await this.db.query<{
      device: string;
      id: string;
      push_type: PushType;
      content: MessageContent;
      expires_at: Date;
      target: { audience?: unknown; condition?: unknown; seenAfter?: unknown };
    }>(
      `SELECT v.device, m.id, m.push_type, m.content, m.expires_at, m.target
       FROM unnest($1::uuid[], $2::text[], $3::uuid[]) AS v(device, app, cursor)
       CROSS JOIN LATERAL (
         SELECT id, push_type, content, expires_at, target FROM messages
         WHERE app_id = v.app AND mode = 'broadcast' AND (v.cursor IS NULL OR id > v.cursor)
           AND expires_at > now() AND revoked_at IS NULL AND channel_policy <> 'vendor'
         ORDER BY id LIMIT $4) m
       ORDER BY v.device, m.id`,
      [devices.map((d) => d.id), devices.map((d) => d.app), devices.map((d) => d.broadcastCursor), limit],
    );
    const stored = new Map<string, StoredBroadcast>();
    const broadcastOf = (row: (typeof result.rows)[number]): StoredBroadcast => {
      let broadcast = stored.get(row.id);
      if (!broadcast) {
        broadcast = {
          ...storedSelection(row.target),
          id: row.id,
          frame: encodeMessage({ id: row.id, pushType: row.push_type, content: row.content, expiresAt: row.expires_at }),
        };
        stored.set(row.id, broadcast);
      }
      return broadcast;
    };
    return new Map([...groupBy(result.rows, (row) => row.device)].map(([device, rows]) => [device, rows.map(broadcastOf)]));
  }

  /**
   * Makes these devices' inboxes current before their catch-up: pending messages past their
   * validity become 'expired' (the sweep would, later), and past the newest `cap` pending ones the
   * oldest become 'dropped'; both count in the device's gap. Rows another transaction holds (the
   * sweep, an ack) are left to it. Answers the rows changed, for their events.
   */
  async settleInboxes(deviceIds: string[], cap: number): Promise<SettledRow[]> {
    const result = await this.db.query<SettledRow>(
      `WITH x AS (
         SELECT i.device_id, i.message_id FROM inbox i
         WHERE i.device_id = ANY($1::uuid[]) AND i.status = 'pending' AND i.expires_at <= now()
         UNION ALL
         SELECT o.device_id, o.message_id FROM unnest($1::uuid[]) AS d(id)
         CROSS JOIN LATERAL (
           SELECT i.device_id, i.message_id FROM inbox i
           WHERE i.device_id = d.id AND i.status = 'pending' AND i.expires_at > now()
           ORDER BY i.seq DESC OFFSET $2
         ) o),
       locked AS (
         SELECT i.device_id, i.message_id FROM inbox i JOIN x USING (device_id, message_id)
         FOR UPDATE OF i SKIP LOCKED),
       r AS (
         UPDATE inbox i SET status = CASE WHEN i.expires_at <= now() THEN 'expired' ELSE 'dropped' END
         FROM locked WHERE i.device_id = locked.device_id AND i.message_id = locked.message_id AND i.status = 'pending'
         RETURNING i.device_id, i.message_id, i.status),
       gaps AS (${ADD_TO_GAPS_SQL})
       SELECT r.device_id, r.message_id, r.status, m.push_type FROM r JOIN messages m ON m.id = r.message_id`,
      [deviceIds, cap],
    );
    return result.rows;
  }

  /** What each of these devices missed and was not told yet. */
  async gaps(deviceIds: string[]): Promise<Map<string, Gap>> {
    const result = await this.db.query<{ device_id: string; expired: number; dropped: number }>(
      `SELECT device_id, expired, dropped FROM device_gaps
       WHERE device_id = ANY($1::uuid[]) AND expired + dropped > 0`,
      [deviceIds],
    );
    return new Map(result.rows.map((row) => [row.device_id, { expired: row.expired, dropped: row.dropped }]));
  }

  /** The device was told of this gap (what it missed since stays in it). */
  async gapTold(device: Device, told: Gap): Promise<void> {
    await this.db.query(
      `UPDATE device_gaps SET expired = GREATEST(0, expired - $2), dropped = GREATEST(0, dropped - $3)
       WHERE device_id = $1`,
      [device.id, told.expired, told.dropped],
    );
  }

  /** Encoded frames of the unexpired, unrevoked messages pending for these devices, in send order per device. */
  async pendingFrames(deviceIds: string[], limitPerDevice: number): Promise<PendingFrame[]> {
    const result = await this.db.query<{ device_id: string; id: string; push_type: PushType; content: MessageContent; expires_at: Date }>(
      `SELECT p.device_id, m.id, m.push_type, m.content, m.expires_at
       FROM unnest($1::uuid[]) AS d(id)
       CROSS JOIN LATERAL (
         SELECT i.device_id, i.message_id, i.seq FROM inbox i
         WHERE i.device_id = d.id AND i.status = 'pending' AND i.expires_at > now()
         ORDER BY i.seq LIMIT $2
       ) p
       JOIN messages m ON m.id = p.message_id AND m.revoked_at IS NULL
       ORDER BY p.device_id, p.seq`,
      [deviceIds, limitPerDevice],
    );
    return result.rows.map((row) => ({
      device: row.device_id,
      id: row.id,
      pushType: row.push_type,
      frame: encodeMessage({ id: row.id, pushType: row.push_type, content: row.content, expiresAt: row.expires_at }),
    }));
  }
}
