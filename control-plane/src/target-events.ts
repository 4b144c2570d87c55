/** Events the control plane itself emits about targets (expired, revoked), with each device's facts. */
import type { JetStreamClient } from '@nats-io/jetstream';
import { newId, publishEvents, type EventKind, type Subjects } from '@mps/shared';

export interface TargetRow {
  app_id: string;
  message_id: string;
  device_id: string;
  platform: string;
  os_version: string | null;
  app_version: string | null;
  sdk_version: string | null;
  push_type: string;
}

/** Columns of TargetRow for a query over inbox rows `r` (device_id, message_id). */
export const TARGET_ROW_SQL = `
  SELECT d.app_id, r.message_id, r.device_id, d.platform, d.os_version, d.app_version, d.sdk_version, m.push_type
  FROM r JOIN devices d ON d.id = r.device_id JOIN messages m ON m.id = r.message_id`;

/** Publishes one event per row, several to a message (per app), and waits until JetStream has them all. */
export async function emitTargetEvents(js: JetStreamClient, subjects: Subjects, kind: EventKind, rows: TargetRow[]): Promise<void> {
  const at = Date.now();
  await publishEvents(
    js,
    subjects,
    rows.map((row) => ({
      id: newId(),
      kind,
      app: row.app_id,
      message: row.message_id,
      device: row.device_id,
      channel: 'socket' as const,
      platform: row.platform,
      osVersion: row.os_version ?? '',
      appVersion: row.app_version ?? '',
      sdkVersion: row.sdk_version ?? '',
      pushType: row.push_type,
      at,
    })),
  );
}
