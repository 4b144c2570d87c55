/**
 * Hands pushes to the vendor senders: one job per (message, target) on the JetStream work queue,
 * published inside the push's transaction so that a push is accepted only with its job queued.
 * Apps without any vendor channel get no jobs (looked up once per CACHE_MS per process).
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { encodeVendorJob, vendorJobId, type ChannelPolicy, type Db, type DbClient, type Subjects, type VendorJob } from '@mps/shared';

const CACHE_MS = 5000;

export class VendorJobs {
  private readonly configured = new Map<string, { has: boolean; at: number }>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly subjects: Subjects,
  ) {}

  /**
   * Queues the job when the message may travel by vendor and the app has a channel for it. The
   * lookup runs on the push's own transaction client: a second pool connection taken while the
   * first is held could wait forever once every connection is held the same way.
   */
  async enqueue(client: DbClient, policy: ChannelPolicy, job: VendorJob): Promise<void> {
    if (!(await this.wanted(client, policy, job.app))) return;
    // A job published twice (a retried transaction) within the dedup window is kept once.
    await this.js.publish(this.subjects.vendorJob(job.app), encodeVendorJob(job), { msgID: vendorJobId(job) });
  }

  /** After a channel of the app was saved or removed on this process. */
  forget(app: string): void {
    this.configured.delete(app);
  }

  /** Whether a push of the app with this policy gets a job: not socket-only, and the app has a channel. */
  async wanted(db: Db | DbClient, policy: ChannelPolicy, app: string): Promise<boolean> {
    if (policy === 'socket') return false;
    const cached = this.configured.get(app);
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.has;
    const r = await db.query('SELECT 1 FROM app_channels WHERE app_id = $1 LIMIT 1', [app]);
    this.configured.set(app, { has: r.rowCount === 1, at: Date.now() });
    return r.rowCount === 1;
  }
}
