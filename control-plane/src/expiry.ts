/**
 * The expiry sweep: marks pending targets past their validity period as expired (and says so as
 * events, for reports and receipts, and in the device's gap, which it is told on its next
 * connection), and deletes messages long expired. Small batches under
 * SKIP LOCKED: no long locks, and several control-plane processes can sweep side by side.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { ADD_TO_GAPS_SQL, type Db, type Logger, type Subjects } from '@mps/shared';
import { emitTargetEvents, TARGET_ROW_SQL, type TargetRow } from './target-events.js';

const BATCH = 1000;

export interface ExpirySweep {
  /** One full pass; answers how many targets expired and how many messages were deleted. */
  sweep(): Promise<{ expired: number; deleted: number }>;
  stop(): Promise<void>;
}

export function startExpirySweep(deps: {
  db: Db;
  js: JetStreamClient;
  subjects: Subjects;
  log: Logger;
  intervalMs: number;
  retentionDays: number;
}): ExpirySweep {
  const { db } = deps;

  async function expireBatch(): Promise<number> {
    const rows = await db.query<TargetRow>(
      `WITH r AS (
         UPDATE inbox i SET status = 'expired'
         FROM (SELECT device_id, message_id FROM inbox WHERE status = 'pending' AND expires_at <= now()
               LIMIT ${BATCH} FOR UPDATE SKIP LOCKED) x
         WHERE i.device_id = x.device_id AND i.message_id = x.message_id
         RETURNING i.device_id, i.message_id, i.status),
       gaps AS (${ADD_TO_GAPS_SQL})
       ${TARGET_ROW_SQL}`,
    );
    // Marked first, told second: a crash in between loses the event, never the state.
    await emitTargetEvents(deps.js, deps.subjects, 'expired', rows.rows);
    return rows.rowCount ?? 0;
  }

  async function deleteBatch(): Promise<number> {
    const result = await db.query(
      `DELETE FROM messages WHERE id IN (
         SELECT id FROM messages WHERE expires_at < now() - make_interval(days => $1) LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)`,
      [deps.retentionDays],
    );
    await db.query(`DELETE FROM user_inbox WHERE ctid IN (SELECT ctid FROM user_inbox WHERE expires_at <= now() LIMIT ${BATCH})`);
    return result.rowCount ?? 0;
  }

  async function sweep() {
    let expired = 0;
    let deleted = 0;
    for (let n = BATCH; n === BATCH; expired += n) n = await expireBatch();
    for (let n = BATCH; n === BATCH; deleted += n) n = await deleteBatch();
    return { expired, deleted };
  }

  let running = true;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> = Promise.resolve();
  const tick = () => {
    current = sweep()
      .then((done) => {
        if (done.expired + done.deleted > 0) deps.log.info(done, 'expiry sweep');
      })
      .catch((error: unknown) => deps.log.error({ err: error }, 'expiry sweep failed'))
      .finally(() => {
        if (running) timer = setTimeout(tick, deps.intervalMs);
      });
  };
  timer = setTimeout(tick, deps.intervalMs);

  return {
    sweep,
    stop: async () => {
      running = false;
      clearTimeout(timer);
      await current;
    },
  };
}
