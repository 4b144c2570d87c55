/**
 * Scenario 11 (OWASP API1, broken object-level authorization): app A's key aimed at app B's
 * devices, users, templates, messages, tasks, schedules, keys and reports, on every route of the
 * OpenAPI document. Routes naming one of B's objects answer 403 or 404; routes whose names are the
 * app's own (a user id, a template name) act on A's object of that name and reveal nothing of B.
 * B's rows in PostgreSQL are the same before and after, and B's device is shown nothing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CreatedApp } from '@mps/control-plane';
import type { PushClient } from '@mps/sdk';
import { eventually } from '../support/services.js';
import { startTestStack, type TestDevice, type TestStack } from '../support/stack.js';
import { record, sized } from './record.js';
import { send } from './support/http.js';
import { apiOperations, fillPath, snapshot, type Operation } from './support/routes.js';

const ROUNDS = sized(1, 20);

let stack: TestStack;
let a: CreatedApp;
let b: CreatedApp;
let bApi: PushClient;
let bDevice: TestDevice;
const secret = 'B-ONLY-7f3a9c';
const bObjects: Record<string, string> = {};
let checked = 0;
const outcomes: Record<string, number> = {};

beforeAll(async () => {
  stack = await startTestStack();
  a = await stack.createApp('tenant-a');
  b = await stack.createApp('tenant-b');
  bApi = stack.api(b);
  bDevice = await stack.device(b);
  await bDevice.client.bind(await bApi.bindToken('bob'));
  await bApi.changeTags({ user: 'bob' }, { add: [`tag-${secret}`] });
  await bApi.changeTags({ device: bDevice.id }, { add: ['device-tag'] });
  await bApi.putTemplate({ name: 'welcome-b', title: `Hi ${secret}` });
  const message = await bApi.pushSimple({ target: { device: bDevice.id }, title: secret });
  const task = await bApi.pushMultiple({ title: secret, targets: [{ device: bDevice.id }] });
  const scheduled = await bApi.schedulePush('simple', { target: { device: bDevice.id }, title: secret }, { at: new Date(Date.now() + 86_400_000).toISOString() });
  const key = await bApi.createKey('hmac');
  await bDevice.waitFor(2);
  // The acks settle before the snapshot: B's rows change by themselves until then.
  await eventually(async () => {
    const r = await stack.database.db.query(`SELECT 1 FROM inbox WHERE device_id = $1 AND status = 'pending'`, [bDevice.id]);
    return r.rowCount === 0 ? true : undefined;
  });
  Object.assign(bObjects, {
    device: bDevice.id,
    message: message.messageId,
    task: task.taskId,
    schedule: scheduled.scheduleId,
    key: key.id,
    firstKey: b.keyId,
  });
});

afterAll(async () => {
  record('11-tenancy', {
    scenario: '11',
    title: "Tenancy: app A's key aimed at app B's objects on every route",
    injected: { rounds: ROUNDS, cross_tenant_requests: checked, outcomes },
    messages_checked: checked,
    lost: 0,
    duplicates_shown: 0,
    expired_shown: 0,
    crashes: 0,
  });
  await stack?.stop();
});

interface Case {
  params?: Record<string, string>;
  query?: string;
  body?: unknown;
  /** refused: 403/404. own: A's object of the same name, 2xx, nothing of B in the answer. */
  expect: 'refused' | 'own';
}

/** How A aims each route at B. A route missing here fails the test: add it. */
function casesFor(op: Operation): Case[] | undefined {
  const o = bObjects;
  const key = `${op.method} ${op.path}`;
  const table: Record<string, Case[]> = {
    'POST /v1/push/simple': [{ body: { target: { device: o.device }, title: 'from A' }, expect: 'refused' }],
    'POST /v1/push/template': [
      { body: { target: { device: o.device }, template: 'welcome-b' }, expect: 'refused' },
      { body: { target: { user: 'bob' }, template: 'welcome-b' }, expect: 'refused' },
    ],
    'POST /v1/push/multiple': [{ body: { title: 'from A', targets: [{ device: o.device }] }, expect: 'refused' }],
    // App-wide: A reaches its own devices only (B's device must be shown nothing, checked below).
    'POST /v1/push/broadcast': [{ body: { title: 'broadcast from A', condition: { tag: 'device-tag' } }, expect: 'own' }],
    'POST /v1/push/dry-run': [{ body: { condition: { tag: 'device-tag' } }, expect: 'own' }],
    'GET /v1/schedules/{id}': [{ params: { id: o.schedule! }, expect: 'refused' }],
    'DELETE /v1/schedules/{id}': [{ params: { id: o.schedule! }, expect: 'refused' }],
    'GET /v1/templates': [{ expect: 'own' }],
    'GET /v1/templates/{name}': [{ params: { name: 'welcome-b' }, expect: 'refused' }],
    'PUT /v1/templates/{name}': [{ params: { name: 'welcome-b' }, body: { title: 'A has its own' }, expect: 'own' }],
    'DELETE /v1/templates/{name}': [{ params: { name: 'welcome-b' }, expect: 'own' }],
    'GET /v1/devices/{id}': [{ params: { id: o.device! }, expect: 'refused' }],
    'GET /v1/devices/{id}/messages': [{ params: { id: o.device! }, expect: 'refused' }],
    'POST /v1/devices/{id}/tags': [{ params: { id: o.device! }, body: { add: ['from-a'], remove: ['device-tag'] }, expect: 'refused' }],
    'POST /v1/devices/{id}/attributes': [{ params: { id: o.device! }, body: { set: { tier: 'a' } }, expect: 'refused' }],
    'POST /v1/devices/{id}/revoke': [{ params: { id: o.device! }, expect: 'refused' }],
    'GET /v1/users/{id}': [{ params: { id: 'bob' }, expect: 'own' }],
    'POST /v1/users/{id}/tags': [{ params: { id: 'bob' }, body: { add: ['from-a'], remove: [`tag-${secret}`] }, expect: 'own' }],
    'POST /v1/users/{id}/attributes': [{ params: { id: 'bob' }, body: { set: { tier: 'a' } }, expect: 'own' }],
    'GET /v1/receipts/callback': [{ expect: 'own' }],
    'PUT /v1/receipts/callback': [{ body: { url: 'https://a.example.com/receipts' }, expect: 'own' }],
    'DELETE /v1/receipts/callback': [{ expect: 'own' }],
    'GET /v1/reports/messages/{id}': [{ params: { id: o.message! }, expect: 'refused' }],
    'GET /v1/reports/tasks/{id}': [{ params: { id: o.task! }, expect: 'refused' }],
    'GET /v1/reports/series': [
      { query: `granularity=minute&from=${encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString())}&to=${encodeURIComponent(new Date().toISOString())}&message=${o.message}`, expect: 'own' },
    ],
    'GET /v1/messages/{id}': [{ params: { id: o.message! }, expect: 'refused' }],
    'GET /v1/messages': [{ expect: 'own' }],
    'GET /v1/tasks/{id}': [{ params: { id: o.task! }, expect: 'refused' }],
    'POST /v1/messages/{id}/revoke': [{ params: { id: o.message! }, expect: 'refused' }],
    'POST /v1/tasks/{id}/revoke': [{ params: { id: o.task! }, expect: 'refused' }],
    'GET /v1/keys': [{ expect: 'own' }],
    'POST /v1/keys': [],
    'POST /v1/keys/{id}/disable': [{ params: { id: o.key! }, expect: 'refused' }, { params: { id: o.firstKey! }, expect: 'refused' }],
    'POST /v1/keys/{id}/enable': [{ params: { id: o.key! }, expect: 'refused' }],
    'DELETE /v1/keys/{id}': [{ params: { id: o.key! }, expect: 'refused' }, { params: { id: o.firstKey! }, expect: 'refused' }],
    'GET /v1/channels': [{ expect: 'own' }],
    'GET /v1/attributes': [{ expect: 'own' }],
    'PUT /v1/attributes': [{ body: { names: ['tier', 'from-a'] }, expect: 'own' }],
    'PUT /v1/channels/{vendor}': [],
    'DELETE /v1/channels/{vendor}': [{ params: { vendor: 'fcm' }, expect: 'refused' }],
  };
  return table[key];
}

it("refuses app A's key on every object of app B, and B stays as it was", async () => {
  const operations = await apiOperations(stack.apiUrl);
  expect(operations.length).toBeGreaterThan(30);
  const missing = operations.filter((op) => casesFor(op) === undefined).map((op) => `${op.method} ${op.path}`);
  expect(missing, 'routes the tenancy scenario does not know yet').toEqual([]);

  const before = await snapshot(stack.database.db, b.app);
  const bShownBefore = bDevice.shown.length;
  const bValues = Object.values(bObjects);
  const sign = { keyId: a.keyId, secret: a.secret };
  for (let round = 0; round < ROUNDS; round++) {
    for (const op of operations) {
      for (const c of casesFor(op)!) {
        const url = fillPath(op.path, c.params ?? {}) + (c.query ? `?${c.query}` : '');
        const answer = await send(stack.apiUrl, op.method, url, c.body, sign);
        checked += 1;
        const text = JSON.stringify(answer.body);
        const outcome = `${op.method} ${op.path} -> ${answer.status}`;
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        // An error may echo what A sent (the id it asked for); anything else of B is a leak.
        const sent = url + JSON.stringify(c.body ?? '');
        const leaked = bValues.filter((v) => text.includes(v) && !sent.includes(v)).concat(text.includes(secret) ? [secret] : []);
        expect({ outcome, leaked }).toEqual({ outcome, leaked: [] });
        if (c.expect === 'refused') {
          expect([403, 404], `${outcome}: ${text}`).toContain(answer.status);
        } else {
          // Reports of A's own traffic need analytics, which this stack does not run: 503 is a clean refusal too.
          expect(answer.status < 300 || answer.status === 503, `${outcome}: ${text}`).toBe(true);
        }
      }
    }
  }
  await new Promise((r) => setTimeout(r, 500));
  expect(await snapshot(stack.database.db, b.app)).toEqual(before);
  expect(bDevice.shown.length).toBe(bShownBefore);
  // B still works: its key, its device.
  const after = await bApi.pushSimple({ target: { device: bDevice.id }, title: 'still B' });
  expect((await bDevice.waitFor(bShownBefore + 1)).at(-1)?.id).toBe(after.messageId);
});
