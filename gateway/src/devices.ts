/** The gateway's view of devices in Postgres: register, authenticate, and what is pending for them. */
import { createHash } from 'node:crypto';
import {
  encodeMessage,
  isUuid,
  newId,
  newSecret,
  type Db,
  type MessageContent,
  type Platform,
  type PushType,
  type RegisterFrame,
  type AuthFrame,
} from '@mps/shared';

export interface Device {
  id: string;
  app: string;
  userId: string | null;
  platform: Platform;
  osVersion: string;
  appVersion: string;
  sdkVersion: string;
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

function deviceOf(frame: RegisterFrame | AuthFrame, id: string, userId: string | null): Device {
  return {
    id,
    app: frame.app,
    userId,
    platform: frame.platform,
    osVersion: frame.osVersion ?? '',
    appVersion: frame.appVersion ?? '',
    sdkVersion: frame.sdkVersion ?? '',
  };
}

export class DeviceStore {
  constructor(private readonly db: Db) {}

  /** A new device, or an existing one that proves its secret (it keeps its id). */
  async register(frame: RegisterFrame): Promise<AuthResult> {
    if (frame.device !== undefined || frame.secret !== undefined) {
      if (frame.device === undefined || frame.secret === undefined) return { failure: 'bad_credentials' };
      return this.authenticate(frame, frame.device, frame.secret);
    }
    const app = await this.db.query('SELECT 1 FROM apps WHERE id = $1', [frame.app]);
    if (app.rowCount === 0) return { failure: 'unknown_app' };
    const id = newId();
    const secret = newSecret();
    await this.db.query(
      `INSERT INTO devices (id, app_id, secret_hash, platform, os_version, app_version, sdk_version, locale, timezone)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [id, frame.app, hashSecret(secret), ...factsOf(frame)],
    );
    return { device: deviceOf(frame, id, null), secret };
  }

  /** Checks the device's secret and records its current facts in the same statement. */
  async authenticate(frame: RegisterFrame | AuthFrame, deviceId: string, secret: string): Promise<AuthResult> {
    if (!isUuid(deviceId)) return { failure: 'bad_credentials' };
    const result = await this.db.query<{ user_id: string | null }>(
      `UPDATE devices SET platform = $4, os_version = $5, app_version = $6, sdk_version = $7, locale = $8,
              timezone = $9, last_seen_at = now()
       WHERE id = $1 AND app_id = $2 AND secret_hash = $3
       RETURNING user_id`,
      [deviceId, frame.app, hashSecret(secret), ...factsOf(frame)],
    );
    const row = result.rows[0];
    if (!row) return { failure: 'bad_credentials' };
    return { device: deviceOf(frame, deviceId, row.user_id) };
  }

  /** Encoded frames of the unexpired, unrevoked messages still pending for a device, in send order. */
  async pendingFrames(deviceId: string, limit: number): Promise<Uint8Array[]> {
    const result = await this.db.query<{ id: string; push_type: PushType; content: MessageContent; expires_at: Date }>(
      `SELECT m.id, m.push_type, m.content, m.expires_at
       FROM inbox i JOIN messages m ON m.id = i.message_id
       WHERE i.device_id = $1 AND i.status = 'pending' AND i.expires_at > now() AND m.revoked_at IS NULL
       ORDER BY i.seq
       LIMIT $2`,
      [deviceId, limit],
    );
    return result.rows.map((row) =>
      encodeMessage({ id: row.id, pushType: row.push_type, content: row.content, expiresAt: row.expires_at }),
    );
  }
}
