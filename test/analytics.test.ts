/**
 * Analytics end to end on embedded chDB: a real push to SDK devices through the gateway, the
 * devices' reports, vendor events published to JetStream the way a sender would, and the reports
 * read through the control plane's report routes (NATS request/reply to analytics).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, encodeEvent, type ApiKey, type TrackingEvent } from '@mps/shared';
import { ChdbStore, serveReports, startIngest, type Ingest } from '@mps/analytics';
import type { CreatedApp } from '@mps/control-plane';
import { reportRoutes } from '../control-plane/src/routes/reports.js';
import { eventually } from './support/services.js';
import { startTestStack, type TestDevice, type TestStack } from './support/stack.js';

interface FunnelBody {
  targeted: number;
  counts: Record<string, number>;
  rates: { delivery: number | null; display: number | null; open: number | null };
  channels: Record<string, Record<string, number>>;
}
interface SeriesBody {
  times: string[];
  series: { key: Record<string, string>; counts: Record<string, number[]> }[];
}

const sum = (values: number[] | undefined) => (values ?? []).reduce((a, b) => a + b, 0);

describe('analytics: a real push, device reports and vendor events, read through the report routes', () => {
  let stack: TestStack;
  let app: CreatedApp;
  let dir: string;
  let store: ChdbStore;
  let ingest: Ingest;
  let reports: { unsubscribe(): void };
  let api: ReturnType<typeof Fastify>;
  const log = createLogger('analytics', 'silent');

  beforeAll(async () => {
    stack = await startTestStack();
    app = await stack.createApp('analytics');
    dir = await mkdtemp(join(tmpdir(), 'mps-analytics-'));
    store = new ChdbStore(dir);
    await store.init();
    const { nc, subjects } = stack.nats;
    ingest = await startIngest({ nc, js: jetstream(nc), store, subjects, log, batchSize: 5000, flushMs: 1000 });
    reports = serveReports({ nc, store, subjects, log });

    const server = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } }).withTypeProvider<TypeBoxTypeProvider>();
    // The signature check is the control plane's and tested there; here every request is the app's.
    server.decorateRequest('apiKey', undefined);
    server.addHook('onRequest', async (request) => {
      request.apiKey = { app: app.app } as ApiKey;
    });
    reportRoutes(server, { nc, subjects, db: stack.database.db });
    await server.ready();
    api = server as unknown as ReturnType<typeof Fastify>;
  });

  afterAll(async () => {
    reports?.unsubscribe();
    await ingest?.stop();
    await api?.close();
    await stack?.stop();
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const get = async <T>(url: string): Promise<{ status: number; body: T }> => {
    const response = await api.inject({ method: 'GET', url });
    return { status: response.statusCode, body: response.json() as T };
  };

  it('counts a push to four devices of a user, three of them online, with the right rates and series', async () => {
    const push = stack.api(app);
    const testStart = Date.now();
    const online: TestDevice[] = [
      await stack.device(app, { platform: 'android', osVersion: '14', appVersion: '2.3.0' }),
      await stack.device(app, { platform: 'android', osVersion: '13', appVersion: '2.4.0' }),
      await stack.device(app, { platform: 'ios', osVersion: '17.1', appVersion: '2.3.0' }),
    ];
    const offline = await stack.device(app, { platform: 'ios', osVersion: '16.0', appVersion: '2.2.0' });
    for (const device of [...online, offline]) await device.client.bind(await push.bindToken('ana'));
    offline.client.close();

    const pushed = await push.pushSimple({ target: { user: 'ana' }, title: 'Sale', body: 'today only' });
    expect(pushed.targeted).toBe(4);
    for (const device of online) expect((await device.waitFor(1))[0]?.id).toBe(pushed.messageId);
    const [a, b, c] = online as [TestDevice, TestDevice, TestDevice];
    a.client.track(pushed.messageId, 'arrived');
    c.client.track(pushed.messageId, 'arrived');
    a.client.track(pushed.messageId, 'opened');
    b.client.track(pushed.messageId, 'ignored');

    // What a vendor sender would publish for the offline device: sent through APNs, then a
    // duplicate publish of the same event (JetStream drops it by its message id).
    const js = jetstream(stack.nats.nc);
    const sent: TrackingEvent = {
      id: randomUUID(),
      kind: 'sent',
      app: app.app,
      message: pushed.messageId,
      device: offline.id,
      channel: 'apns',
      platform: 'ios',
      osVersion: '16.0',
      appVersion: '2.2.0',
      sdkVersion: '',
      pushType: 'notification',
      at: Date.now(),
    };
    await js.publish(stack.nats.subjects.event(app.app, 'sent'), encodeEvent(sent), { msgID: sent.id });
    const again = await js.publish(stack.nats.subjects.event(app.app, 'sent'), encodeEvent(sent), { msgID: sent.id });
    expect(again.duplicate).toBe(true);
    const reported = Date.now();

    const funnel = await eventually(
      async () => {
        const { status, body } = await get<FunnelBody>(`/v1/reports/messages/${pushed.messageId}`);
        expect(status).toBe(200);
        return body.counts.opened === 1 && body.counts.ignored === 1 && body.counts.sent === 1 && body.counts.arrived === 2 ? body : undefined;
      },
      10_000,
      'the funnel to count the reports',
    );
    expect(funnel).toEqual({
      id: pushed.messageId,
      targeted: 4,
      counts: { sent: 1, delivered: 3, arrived: 2, opened: 1, ignored: 1, expired: 0, revoked: 0, failed: 0, dropped: 0 },
      rates: { delivery: 0.75, display: 0.6667, open: 0.5 },
      channels: { apns: { sent: 1 }, socket: { delivered: 3, arrived: 2, opened: 1, ignored: 1 } },
    });

    // The newest minute is in the per-minute series within 10 seconds of the reports.
    const range = `from=${new Date(testStart - 60_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
    const byPlatform = await eventually(
      async () => {
        const { body } = await get<SeriesBody>(`/v1/reports/series?granularity=minute&${range}&by=platform`);
        const ios = body.series.find((s) => s.key.platform === 'ios');
        return sum(ios?.counts.arrived) === 1 && sum(ios?.counts.sent) === 1 ? body : undefined;
      },
      10_000,
      'the minute series',
    );
    expect(Date.now() - reported).toBeLessThan(10_000);
    const of = (body: SeriesBody, key: string, value: string) => body.series.find((s) => s.key[key] === value)?.counts ?? {};
    expect(sum(of(byPlatform, 'platform', 'android').delivered)).toBe(2);
    expect(sum(of(byPlatform, 'platform', 'ios').delivered)).toBe(1);
    expect(sum(of(byPlatform, 'platform', 'android').opened)).toBe(1);

    const byVersion = (await get<SeriesBody>(`/v1/reports/series?granularity=hour&${range}&by=appVersion&kinds=delivered,arrived`)).body;
    expect(sum(of(byVersion, 'appVersion', '2.3.0').delivered)).toBe(2);
    expect(sum(of(byVersion, 'appVersion', '2.3.0').arrived)).toBe(2);
    expect(sum(of(byVersion, 'appVersion', '2.4.0').delivered)).toBe(1);
    expect(of(byVersion, 'appVersion', '2.4.0').opened).toBeUndefined();

    const byChannel = (await get<SeriesBody>(`/v1/reports/series?granularity=day&${range}&by=channel,pushType&pushType=notification`)).body;
    expect(byChannel.series.map((s) => s.key).sort((x, y) => (x.channel ?? '').localeCompare(y.channel ?? ''))).toEqual([
      { channel: 'apns', pushType: 'notification' },
      { channel: 'socket', pushType: 'notification' },
    ]);
    expect(sum(of(byChannel, 'channel', 'socket').delivered)).toBe(3);

    const ofMessage = (await get<SeriesBody>(`/v1/reports/series?granularity=minute&${range}&message=${pushed.messageId}`)).body;
    expect(ofMessage.series).toHaveLength(1);
    expect(sum(ofMessage.series[0]?.counts.delivered)).toBe(3);
    expect(ingest.stats().malformed).toBe(0);
  });

  it('answers clear errors for an unknown message, a bad range, and when analytics is not running', async () => {
    expect((await get(`/v1/reports/messages/${randomUUID()}`)).status).toBe(404);
    expect((await get('/v1/reports/series?granularity=minute&from=2026-11-01T00:00:00Z&to=2026-11-20T00:00:00Z')).status).toBe(400);
    expect((await get('/v1/reports/series?granularity=week&from=2026-11-01T00:00:00Z')).status).toBe(400);
    expect((await get('/v1/reports/series?granularity=hour&from=2026-11-01T00:00:00Z&by=os')).status).toBe(400);
    reports.unsubscribe();
    const down = await get<{ code?: string }>('/v1/reports/series?granularity=hour&from=2026-11-01T00:00:00Z');
    expect(down.status).toBe(503);
    reports = serveReports({ nc: stack.nats.nc, store, subjects: stack.nats.subjects, log });
  });
});
