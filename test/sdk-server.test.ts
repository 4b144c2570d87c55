/**
 * The server SDK's retries against the real control plane: idempotent calls that meet the app's
 * rate limit (429 with Retry-After) are tried again and succeed; a push without a business id is
 * not (a second try could send it twice).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiRequestError, PushClient } from '@mps/sdk';
import type { CreatedApp } from '@mps/control-plane';
import { insertDevice } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let app: CreatedApp;

beforeAll(async () => {
  stack = await startTestStack();
  app = await stack.createApp('retries');
  await stack.database.db.query('UPDATE apps SET rate_limit_per_s = 2 WHERE id = $1', [app.app]);
});

afterAll(async () => {
  await stack?.stop();
});

const client = (retries?: number) =>
  new PushClient({ baseUrl: stack.apiUrl, keyId: app.keyId, secret: app.secret, ...(retries !== undefined && { retries }) });

/** Uses up this second's requests of the app. */
async function exhaust(api: PushClient): Promise<void> {
  const tries = await Promise.allSettled([api.templates(), api.templates(), api.templates()]);
  expect(tries.some((t) => t.status === 'rejected' && (t.reason as ApiRequestError).code === 'RATE_LIMITED')).toBe(true);
}

it('retries idempotent calls after 429 with the server\'s Retry-After, and not a push without a business id', async () => {
  const once = client(0);
  const patient = client(3);
  const device = await insertDevice(stack.database.db, app.app);

  await exhaust(once);
  // A GET: tried again after the limit's window, then answered.
  expect((await patient.templates()).templates).toEqual([]);

  await exhaust(once);
  const refused = await patient.pushSimple({ target: { device }, title: 'not idempotent' }).catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(ApiRequestError);
  expect(refused).toMatchObject({ status: 429, code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) });

  await exhaust(once);
  const accepted = await patient.pushSimple({ target: { device }, title: 'idempotent', businessId: 'order-42' });
  expect(accepted).toMatchObject({ duplicate: false, targeted: 1 });
  const stored = await stack.database.db.query('SELECT count(*)::int AS n FROM messages WHERE app_id = $1', [app.app]);
  expect(stored.rows[0]).toEqual({ n: 1 });
  await new Promise((resolve) => setTimeout(resolve, 1100));
  expect(await once.device(device)).toMatchObject({ id: device, online: false });
  expect((await once.deviceMessages(device)).messages).toEqual([expect.objectContaining({ id: accepted.messageId, title: 'idempotent', status: 'pending' })]);
}, 30_000);
