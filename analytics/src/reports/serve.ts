/**
 * Report queries answered over NATS request/reply (a queue group, so any analytics process may
 * answer), so that other processes never touch the store.
 */
import type { Logger, NatsConnection, Subjects } from '@mps/shared';
import type { EventStore } from '../store/store.js';
import { messageFunnelByChannel } from './funnel.js';
import { parseFunnelRequest, parseSeriesRequest, ReportRequestError, reportSubjects, type ErrorReply } from './protocol.js';
import { timeSeries } from './series.js';

export function serveReports(deps: { nc: NatsConnection; store: EventStore; subjects: Subjects; log: Logger }): { unsubscribe(): void } {
  const { nc, store, log } = deps;
  const subjects = reportSubjects(deps.subjects);
  const answer = (subject: string, handle: (request: unknown) => Promise<object>): ReturnType<NatsConnection['subscribe']> =>
    nc.subscribe(subject, {
      queue: 'analytics',
      callback: (error, msg) => {
        if (error) return log.error({ err: error, subject }, 'report subscription failed');
        void (async () => {
          let reply: object;
          try {
            reply = await handle(JSON.parse(msg.string()) as unknown);
          } catch (failure) {
            const bad = failure instanceof ReportRequestError || failure instanceof SyntaxError;
            if (!bad) log.error({ err: failure, subject }, 'report failed');
            reply = { error: bad ? (failure as Error).message : 'the report failed', code: bad ? 'BAD_REQUEST' : 'FAILED' } satisfies ErrorReply;
          }
          msg.respond(JSON.stringify(reply));
        })();
      },
    });
  const subscriptions = [
    answer(subjects.funnel, (request) => messageFunnelByChannel(store, parseFunnelRequest(request))),
    answer(subjects.series, async (request) => ({ series: await timeSeries(store, parseSeriesRequest(request)) })),
  ];
  return { unsubscribe: () => subscriptions.forEach((s) => s.unsubscribe()) };
}
