/**
 * Devices and users as the business server sees them: look-ups (with whether each device is
 * connected now, and a device's latest messages), and their tags and attributes.
 * A change is told to the gateways (a header-only message on the device's or user's subject), so
 * connected devices are selected by their new profile at once.
 */
import { headers as natsHeaders } from '@nats-io/transport-node';
import Type from 'typebox';
import {
  changeDeviceAttributes,
  changeDeviceTags,
  changeUserAttributes,
  changeUserTags,
  CONTROL_HEADER,
  Limits,
  namedRecord,
  PRESENCE_QUERY,
  PROFILE_CHANGED,
  undeclaredAttributes,
  userProfile,
  type Db,
  type NatsConnection,
  type Profile,
  type Subjects,
} from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';

const Tag = Type.String({ minLength: 1, maxLength: Limits.TAG_LENGTH });
const AttributeName = Type.String({ minLength: 1, maxLength: 64 });
const TagChange = Type.Object(
  {
    add: Type.Optional(Type.Array(Tag, { maxItems: Limits.TAGS_PER_DEVICE })),
    remove: Type.Optional(Type.Array(Tag, { maxItems: Limits.TAGS_PER_DEVICE })),
  },
  { additionalProperties: false },
);
const AttributeChange = Type.Object(
  {
    set: namedRecord(Type.Union([Type.String({ maxLength: Limits.ATTRIBUTE_VALUE_LENGTH }), Type.Null()]), 64, {
      description: 'a null value removes the attribute',
    }),
  },
  { additionalProperties: false },
);
const AttributeNames = Type.Object(
  {
    names: Type.Union([Type.Array(AttributeName, { maxItems: Limits.ATTRIBUTES }), Type.Null()], {
      description: 'the only attribute names devices and users may be given; null: any name',
    }),
  },
  { additionalProperties: false },
);
const ProfileOut = Type.Object({ tags: Type.Array(Type.String()), attributes: Type.Record(Type.String(), Type.String()) });
const DeviceParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const UserParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

const DeviceOut = Type.Object({
  id: Type.String(),
  userId: Type.Union([Type.String(), Type.Null()]),
  platform: Type.String(),
  osVersion: Type.Union([Type.String(), Type.Null()]),
  appVersion: Type.Union([Type.String(), Type.Null()]),
  sdkVersion: Type.Union([Type.String(), Type.Null()]),
  locale: Type.Union([Type.String(), Type.Null()]),
  timezone: Type.Union([Type.String(), Type.Null()]),
  tags: Type.Array(Type.String()),
  attributes: Type.Record(Type.String(), Type.String()),
  vendorTokens: Type.Record(Type.String(), Type.String(), { description: 'vendor -> token, masked' }),
  createdAt: Type.String(),
  lastSeenAt: Type.String(),
  online: Type.Boolean({ description: 'a gateway holds a ready connection of the device now' }),
  revokedAt: Type.Union([Type.String(), Type.Null()], { description: 'when its credentials were revoked (POST /v1/devices/{id}/revoke)' }),
});

/** How long "is this device connected?" waits; a device no gateway holds is answered at once (no responders). */
const PRESENCE_TIMEOUT_MS = 500;
const RECENT_MESSAGES = 20;

const RecentMessage = Type.Object({
  id: Type.String(),
  mode: Type.String(),
  pushType: Type.String(),
  title: Type.Union([Type.String(), Type.Null()]),
  status: Type.String(),
  channel: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  deliveredAt: Type.Union([Type.String(), Type.Null()]),
});

interface DeviceRow {
  id: string;
  user_id: string | null;
  platform: string;
  os_version: string | null;
  app_version: string | null;
  sdk_version: string | null;
  locale: string | null;
  timezone: string | null;
  tags: string[];
  attributes: Record<string, string>;
  vendor_tokens: Record<string, string> | null;
  created_at: Date;
  last_seen_at: Date;
  revoked_at: Date | null;
}

/** Vendor tokens are credentials of a kind: shown only by their ends. */
const mask = (token: string) => (token.length <= 12 ? '…' : `${token.slice(0, 4)}…${token.slice(-4)}`);

const deviceOut = (row: DeviceRow, online: boolean) => ({
  id: row.id,
  userId: row.user_id,
  platform: row.platform,
  osVersion: row.os_version,
  appVersion: row.app_version,
  sdkVersion: row.sdk_version,
  locale: row.locale,
  timezone: row.timezone,
  tags: row.tags,
  attributes: row.attributes,
  vendorTokens: Object.fromEntries(Object.entries(row.vendor_tokens ?? {}).map(([vendor, token]) => [vendor, mask(token)])),
  createdAt: row.created_at.toISOString(),
  lastSeenAt: row.last_seen_at.toISOString(),
  online,
  revokedAt: row.revoked_at?.toISOString() ?? null,
});

const DEVICE_QUERY = `
  SELECT d.id, d.user_id, d.platform, d.os_version, d.app_version, d.sdk_version, d.locale, d.timezone, d.tags,
         d.attributes, d.created_at, d.last_seen_at, d.revoked_at,
         (SELECT jsonb_object_agg(v.vendor, v.token) FROM device_vendor_tokens v WHERE v.device_id = d.id) AS vendor_tokens
  FROM devices d`;

export function profileRoutes(app: Api, deps: { db: Db; nc: NatsConnection; subjects: Subjects }): void {
  const { db } = deps;
  const changed = (subject: string) => {
    const h = natsHeaders();
    h.set(CONTROL_HEADER, PROFILE_CHANGED);
    deps.nc.publish(subject, new Uint8Array(0), { headers: h });
  };

  /** Asks the gateways, the way the vendor sender does: only one holding a ready socket of it answers. */
  async function online(appId: string, device: string): Promise<boolean> {
    const h = natsHeaders();
    h.set(CONTROL_HEADER, PRESENCE_QUERY);
    try {
      await deps.nc.request(deps.subjects.device(appId, device), new Uint8Array(0), { timeout: PRESENCE_TIMEOUT_MS, headers: h });
      return true;
    } catch {
      return false; // no responders, or no answer in time: not connected
    }
  }

  async function deviceOf(appId: string, id: string): Promise<DeviceRow> {
    const r = await db.query<DeviceRow>(`${DEVICE_QUERY} WHERE d.id = $1 AND d.app_id = $2`, [id, appId]);
    const row = r.rows[0];
    if (!row) throw new ApiError('DEVICE_NOT_FOUND', `no device ${id} in this app`);
    return row;
  }

  async function declared(appId: string, set: Record<string, string | null>): Promise<void> {
    const unknown = await undeclaredAttributes(db, appId, set);
    if (unknown.length > 0) throw new ApiError('UNKNOWN_ATTRIBUTE', `the app has not declared ${unknown.join(', ')} (PUT /v1/attributes)`);
  }

  const within = (profile: Profile | undefined, what: string): Profile => {
    if (!profile) throw new ApiError('PROFILE_LIMIT', `at most ${Limits.TAGS_PER_DEVICE} tags and ${Limits.ATTRIBUTES} attributes (${what})`);
    return profile;
  };

  app.get('/v1/devices/:id', { schema: { params: DeviceParams, response: { 200: DeviceOut } } }, async (request) => {
    const appId = appOf(request);
    const [row, connected] = await Promise.all([deviceOf(appId, request.params.id), online(appId, request.params.id)]);
    return deviceOut(row, connected);
  });

  app.get(
    '/v1/devices/:id/messages',
    { schema: { params: DeviceParams, response: { 200: Type.Object({ messages: Type.Array(RecentMessage) }) } } },
    async (request) => {
      const appId = appOf(request);
      await deviceOf(appId, request.params.id);
      const r = await db.query<{
        id: string;
        mode: string;
        push_type: string;
        title: string | null;
        status: string;
        channel: string | null;
        created_at: Date;
        delivered_at: Date | null;
      }>(
        `SELECT m.id, m.mode, m.push_type, m.content->>'title' AS title, m.created_at, i.channel, i.delivered_at,
                CASE WHEN i.status = 'pending' AND i.expires_at <= now() THEN 'expired' ELSE i.status END AS status
         FROM inbox i JOIN messages m ON m.id = i.message_id
         WHERE i.device_id = $1 AND m.app_id = $2 ORDER BY i.seq DESC LIMIT $3`,
        [request.params.id, appId, RECENT_MESSAGES],
      );
      return {
        messages: r.rows.map((m) => ({
          id: m.id,
          mode: m.mode,
          pushType: m.push_type,
          title: m.title,
          status: m.status,
          channel: m.channel,
          createdAt: m.created_at.toISOString(),
          deliveredAt: m.delivered_at?.toISOString() ?? null,
        })),
      };
    },
  );

  app.post('/v1/devices/:id/tags', { schema: { params: DeviceParams, body: TagChange, response: { 200: ProfileOut } } }, async (request) => {
    const appId = appOf(request);
    await deviceOf(appId, request.params.id);
    const profile = within(await changeDeviceTags(db, request.params.id, request.body.add ?? [], request.body.remove ?? []), 'tags');
    changed(deps.subjects.device(appId, request.params.id));
    return profile;
  });

  app.post('/v1/devices/:id/attributes', { schema: { params: DeviceParams, body: AttributeChange, response: { 200: ProfileOut } } }, async (request) => {
    const appId = appOf(request);
    await deviceOf(appId, request.params.id);
    await declared(appId, request.body.set);
    const profile = within(await changeDeviceAttributes(db, request.params.id, request.body.set), 'attributes');
    changed(deps.subjects.device(appId, request.params.id));
    return profile;
  });

  app.get(
    '/v1/users/:id',
    { schema: { params: UserParams, response: { 200: Type.Object({ userId: Type.String(), ...ProfileOut.properties, devices: Type.Array(DeviceOut) }) } } },
    async (request) => {
      const appId = appOf(request);
      const devices = await db.query<DeviceRow>(`${DEVICE_QUERY} WHERE d.app_id = $1 AND d.user_id = $2 ORDER BY d.created_at`, [appId, request.params.id]);
      const connected = await Promise.all(devices.rows.map((d) => online(appId, d.id)));
      return {
        userId: request.params.id,
        ...(await userProfile(db, appId, request.params.id)),
        devices: devices.rows.map((d, i) => deviceOut(d, connected[i] ?? false)),
      };
    },
  );

  app.post('/v1/users/:id/tags', { schema: { params: UserParams, body: TagChange, response: { 200: ProfileOut } } }, async (request) => {
    const appId = appOf(request);
    const profile = within(await changeUserTags(db, appId, request.params.id, request.body.add ?? [], request.body.remove ?? []), 'tags');
    changed(deps.subjects.user(appId, request.params.id));
    return profile;
  });

  app.post('/v1/users/:id/attributes', { schema: { params: UserParams, body: AttributeChange, response: { 200: ProfileOut } } }, async (request) => {
    const appId = appOf(request);
    await declared(appId, request.body.set);
    const profile = within(await changeUserAttributes(db, appId, request.params.id, request.body.set), 'attributes');
    changed(deps.subjects.user(appId, request.params.id));
    return profile;
  });

  app.get('/v1/attributes', { schema: { response: { 200: AttributeNames } } }, async (request) => {
    const r = await db.query<{ names: string[] | null }>('SELECT attribute_names AS names FROM apps WHERE id = $1', [appOf(request)]);
    return { names: r.rows[0]?.names ?? null };
  });

  app.put('/v1/attributes', { schema: { body: AttributeNames, response: { 200: AttributeNames } } }, async (request) => {
    const names = request.body.names === null ? null : [...new Set(request.body.names)].sort();
    await db.query('UPDATE apps SET attribute_names = $2 WHERE id = $1', [appOf(request), names]);
    return { names };
  });
}
