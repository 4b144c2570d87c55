/**
 * Tags and attributes of devices and users: the one place they are changed, by the device itself
 * (through the gateway) or by the business server (through the API). Each change keeps the limits
 * in one statement: over a limit, nothing changes and undefined comes back.
 */
import type { Db } from './db.js';
import { Limits } from './protocol/index.js';

export interface Profile {
  tags: string[];
  attributes: Record<string, string>;
}

/**
 * A NATS header on a device or user subject marks a control message for the gateways, not a device
 * frame: "the profile changed, reload it", or "this device connected again elsewhere" (with the
 * new connection's id in CONNECTION_HEADER), or "the device's credentials were revoked, close its
 * connections" (with the time in REVOKED_AT_HEADER), or a request "is this device connected?" that
 * only a gateway holding a ready socket of the device answers (no responders means offline).
 */
export const CONTROL_HEADER = 'Mps-Control';
export const PROFILE_CHANGED = 'profile';
export const DEVICE_REPLACED = 'replaced';
export const DEVICE_REVOKED = 'revoked';
export const PRESENCE_QUERY = 'presence';
export const CONNECTION_HEADER = 'Mps-Connection';
/** When the new connection authenticated (ms): only connections older than it are replaced. */
export const AUTHENTICATED_HEADER = 'Mps-Authenticated';
/** When the device's credentials were revoked (ms since the epoch). */
export const REVOKED_AT_HEADER = 'Mps-Revoked-At';

const mergedTags = (column: string) =>
  `ARRAY(SELECT DISTINCT x FROM unnest(${column} || $2::text[]) x WHERE NOT (x = ANY($3::text[])) ORDER BY x)`;
const mergedAttributes = (column: string) => `jsonb_strip_nulls(${column} || $2::jsonb)`;
const attributeCount = (expression: string) => `(SELECT count(*) FROM jsonb_object_keys(${expression}))`;

export async function changeDeviceTags(db: Db, device: string, add: string[], remove: string[]): Promise<Profile | undefined> {
  const r = await db.query<Profile>(
    `UPDATE devices SET tags = ${mergedTags('tags')}
     WHERE id = $1 AND cardinality(${mergedTags('tags')}) <= $4
     RETURNING tags, attributes`,
    [device, add, remove, Limits.TAGS_PER_DEVICE],
  );
  return r.rows[0];
}

/** Null values remove an attribute. */
export async function changeDeviceAttributes(db: Db, device: string, set: Record<string, string | null>): Promise<Profile | undefined> {
  const r = await db.query<Profile>(
    `UPDATE devices SET attributes = ${mergedAttributes('attributes')}
     WHERE id = $1 AND ${attributeCount(mergedAttributes('attributes'))} <= $3
     RETURNING tags, attributes`,
    [device, JSON.stringify(set), Limits.ATTRIBUTES],
  );
  return r.rows[0];
}

async function upsertUser(db: Db, app: string, user: string): Promise<void> {
  await db.query('INSERT INTO user_profiles (app_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [app, user]);
}

export async function changeUserTags(db: Db, app: string, user: string, add: string[], remove: string[]): Promise<Profile | undefined> {
  await upsertUser(db, app, user);
  const r = await db.query<Profile>(
    `UPDATE user_profiles SET tags = ${mergedTags('tags')}, updated_at = now()
     WHERE app_id = $1 AND user_id = $5 AND cardinality(${mergedTags('tags')}) <= $4
     RETURNING tags, attributes`,
    [app, add, remove, Limits.TAGS_PER_DEVICE, user],
  );
  return r.rows[0];
}

export async function changeUserAttributes(db: Db, app: string, user: string, set: Record<string, string | null>): Promise<Profile | undefined> {
  await upsertUser(db, app, user);
  const r = await db.query<Profile>(
    `UPDATE user_profiles SET attributes = ${mergedAttributes('attributes')}, updated_at = now()
     WHERE app_id = $1 AND user_id = $4 AND ${attributeCount(mergedAttributes('attributes'))} <= $3
     RETURNING tags, attributes`,
    [app, JSON.stringify(set), Limits.ATTRIBUTES, user],
  );
  return r.rows[0];
}

/**
 * The names among those being set (null values remove, and are always allowed) that the app has
 * not declared; none when the app declares no names.
 */
export async function undeclaredAttributes(db: Db, app: string, set: Record<string, string | null>): Promise<string[]> {
  const names = Object.keys(set).filter((name) => set[name] !== null);
  if (names.length === 0) return [];
  const r = await db.query<{ name: string }>(
    `SELECT n AS name FROM apps a, unnest($2::text[]) n
      WHERE a.id = $1 AND a.attribute_names IS NOT NULL AND NOT (n = ANY(a.attribute_names))`,
    [app, names],
  );
  return r.rows.map((row) => row.name);
}

export async function userProfile(db: Db, app: string, user: string): Promise<Profile> {
  const r = await db.query<Profile>('SELECT tags, attributes FROM user_profiles WHERE app_id = $1 AND user_id = $2', [app, user]);
  return r.rows[0] ?? { tags: [], attributes: {} };
}
