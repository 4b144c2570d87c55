/**
 * Report queries, answered over NATS request/reply so that other processes never touch the store.
 */
import { isUuid, type Logger, type NatsConnection, type Subjects } from '@mps/shared';
import { quote, type EventStore } from './store/store.js';

export interface FunnelRequest {
  app: string;
  message: string;
}

/** Counts of distinct devices per event kind for one message. */
export type Funnel = Record<string, number>;

const APP_ID = /^app_[A-Za-z0-9_-]{1,64}$/;

export async function messageFunnel(store: EventStore, request: FunnelRequest): Promise<Funnel> {
  if (!APP_ID.test(request.app) || !isUuid(request.message)) throw new Error('app or message id malformed');
  const rows = await store.select<{ kind: string; devices: string | number }>(
    `SELECT kind, uniqExact(device) AS devices FROM events
     WHERE app = ${quote(request.app)} AND message = ${quote(request.message)}
     GROUP BY kind ORDER BY kind`,
  );
  return Object.fromEntries(rows.map((r) => [r.kind, Number(r.devices)]));
}

export function serveReports(deps: { nc: NatsConnection; store: EventStore; subjects: Subjects; log: Logger }) {
  return deps.nc.subscribe(deps.subjects.reportFunnel, {
    queue: 'analytics',
    callback: (error, msg) => {
      if (error) return deps.log.error({ err: error }, 'report subscription failed');
      void (async () => {
        try {
          const funnel = await messageFunnel(deps.store, msg.json<FunnelRequest>());
          msg.respond(JSON.stringify({ funnel }));
        } catch (failure) {
          msg.respond(JSON.stringify({ error: (failure as Error).message }));
        }
      })();
    },
  });
}
