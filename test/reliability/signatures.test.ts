/**
 * Scenario 10: signed requests that must be refused (timestamp 301 s ahead and behind, a replayed
 * nonce, a tampered body, path or query, a disabled key, a deleted key) and two active keys at once,
 * both accepted. Every refused push must leave no message behind. (test/keys.test.ts covers key
 * rotation and uploaded keys through the SDK; this one sends the exact bytes.)
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CreatedApp } from '@mps/control-plane';
import { PushClient } from '@mps/sdk';
import { signedHeaders } from '../support/api.js';
import { startTestStack, type TestDevice, type TestStack } from '../support/stack.js';
import { record, sized } from './record.js';
import { send, type Answer } from './support/http.js';

const ROUNDS = sized(3, 100);

let stack: TestStack;
let app: CreatedApp;
let device: TestDevice;
let checked = 0;
const refused: Record<string, number> = {};

beforeAll(async () => {
  stack = await startTestStack();
  app = await stack.createApp('signatures');
  device = await stack.device(app);
});

afterAll(async () => {
  record('10-signatures', {
    scenario: '10',
    title: 'Signatures: skew of 301 s both ways, replayed nonce, tampered body, path and query, disabled and deleted keys, two active keys',
    injected: { rounds: ROUNDS, invalid_requests: Object.values(refused).reduce((a, b) => a + b, 0), by_kind: refused },
    messages_checked: checked,
    lost: 0,
    duplicates_shown: 0,
    expired_shown: 0,
    crashes: 0,
  });
  await stack?.stop();
});

const messages = async () => Number((await stack.database.db.query<{ n: string }>('SELECT count(*) AS n FROM messages WHERE app_id = $1', [app.app])).rows[0]?.n);

function expectRefused(kind: string, answer: Answer, code: string): void {
  checked += 1;
  refused[kind] = (refused[kind] ?? 0) + 1;
  expect({ kind, status: answer.status, code: answer.body.error?.code }).toEqual({ kind, status: 401, code });
}

it('refuses every invalid request and changes nothing, and accepts both active keys', async () => {
  const second = await stack.api(app).createKey('hmac');
  const keys = [
    { keyId: app.keyId, secret: app.secret },
    { keyId: second.id, secret: second.secret as string },
  ];
  const push = { target: { device: device.id }, title: 'signed' };
  const accepted: string[] = [];

  for (let round = 0; round < ROUNDS; round++) {
    const before = await messages();
    for (const key of keys) {
      // Both active keys sign valid pushes.
      const ok = await send(stack.apiUrl, 'POST', '/v1/push/simple', push, key);
      checked += 1;
      expect(ok.status).toBe(202);
      accepted.push(ok.body.messageId as string);

      const now = Date.now();
      expectRefused('skew_ahead_301s', await send(stack.apiUrl, 'POST', '/v1/push/simple', push, { ...key, timestamp: now + 301_000 }), 'AUTH_EXPIRED_TIMESTAMP');
      expectRefused('skew_behind_301s', await send(stack.apiUrl, 'POST', '/v1/push/simple', push, { ...key, timestamp: now - 301_000 }), 'AUTH_EXPIRED_TIMESTAMP');

      const nonce = randomBytes(16).toString('base64url');
      const first = await send(stack.apiUrl, 'GET', '/v1/keys', undefined, { ...key, nonce });
      checked += 1;
      expect(first.status).toBe(200);
      expectRefused('replayed_nonce', await send(stack.apiUrl, 'GET', '/v1/keys', undefined, { ...key, nonce }), 'AUTH_REPLAYED_NONCE');
      const replayedPush = randomBytes(16).toString('base64url');
      const once = await send(stack.apiUrl, 'POST', '/v1/push/simple', push, { ...key, nonce: replayedPush });
      checked += 1;
      accepted.push(once.body.messageId as string);
      expectRefused('replayed_push', await send(stack.apiUrl, 'POST', '/v1/push/simple', push, { ...key, nonce: replayedPush }), 'AUTH_REPLAYED_NONCE');

      const tampered = JSON.stringify({ ...push, title: 'tampered' });
      expectRefused('tampered_body', await send(stack.apiUrl, 'POST', '/v1/push/simple', push, key, tampered), 'AUTH_BAD_SIGNATURE');
      expectRefused('tampered_body_whitespace', await send(stack.apiUrl, 'POST', '/v1/push/simple', push, key, `${JSON.stringify(push)} `), 'AUTH_BAD_SIGNATURE');
      // The path and the query are signed too.
      const signedFor = signedHeaders('GET', '/v1/messages?limit=1', '', key);
      const swapped = await fetch(`${stack.apiUrl}/v1/messages?limit=2`, { headers: signedFor });
      checked += 1;
      refused.tampered_query = (refused.tampered_query ?? 0) + 1;
      expect([swapped.status, ((await swapped.json()) as Answer['body']).error?.code]).toEqual([401, 'AUTH_BAD_SIGNATURE']);
      const wrongSecret = { keyId: key.keyId, secret: `${key.secret.slice(0, -1)}${key.secret.endsWith('A') ? 'B' : 'A'}` };
      expectRefused('wrong_secret', await send(stack.apiUrl, 'POST', '/v1/push/simple', push, wrongSecret), 'AUTH_BAD_SIGNATURE');
      expectRefused('unknown_key', await send(stack.apiUrl, 'POST', '/v1/push/simple', push, { keyId: 'key_AAAAAAAAAAAAAAAA', secret: key.secret }), 'AUTH_UNKNOWN_KEY');
    }
    expect(await messages()).toBe(before + 4);
  }

  // A disabled key is refused at once (the stack's key cache is off); the other keeps working.
  await stack.api(app).disableKey(app.keyId);
  const before = await messages();
  for (let i = 0; i < ROUNDS; i++) {
    expectRefused('disabled_key', await send(stack.apiUrl, 'POST', '/v1/push/simple', push, keys[0]!), 'AUTH_KEY_DISABLED');
  }
  expect((await send(stack.apiUrl, 'GET', '/v1/keys', undefined, keys[1]!)).status).toBe(200);
  const secondClient = new PushClient({ baseUrl: stack.apiUrl, keyId: second.id, secret: second.secret as string });
  await secondClient.deleteKey(app.keyId);
  expectRefused('deleted_key', await send(stack.apiUrl, 'POST', '/v1/push/simple', push, keys[0]!), 'AUTH_UNKNOWN_KEY');
  expect(await messages()).toBe(before);

  // Every accepted push arrived, once.
  await device.waitFor(accepted.length, 15_000);
  const shown = device.shown.map((m) => m.id);
  expect(shown.sort()).toEqual([...accepted].sort());
});
