/** API keys: rotation with two active keys, disable and delete, and uploaded RSA / Ed25519 public keys. */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PushClient } from '@mps/sdk';
import type { CreatedApp } from '@mps/control-plane';
import { startTestStack, type TestStack } from './support/stack.js';

describe('API keys', () => {
  let stack: TestStack;
  let app: CreatedApp;

  beforeAll(async () => {
    stack = await startTestStack();
    app = await stack.createApp('keys');
  });
  afterAll(async () => stack?.stop());

  const client = (keyId: string, key: { secret: string } | { privateKey: string }) =>
    new PushClient({ baseUrl: stack.apiUrl, keyId, ...key } as ConstructorParameters<typeof PushClient>[0]);

  it('rotates without downtime: a second key works beside the first, then the first is disabled and deleted', async () => {
    const first = stack.api(app);
    const created = await first.createKey('hmac');
    expect(created).toMatchObject({ kind: 'hmac', status: 'active', secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    const second = client(created.id, { secret: created.secret as string });

    const listed = await second.keys();
    expect(listed.keys.map((k) => k.id)).toEqual([app.keyId, created.id]);
    expect(JSON.stringify(listed)).not.toContain(created.secret);
    expect(JSON.stringify(listed)).not.toContain(app.secret);

    await expect(first.createKey('hmac')).rejects.toMatchObject({ status: 409, code: 'KEY_LIMIT' });
    await second.disableKey(app.keyId);
    await expect(first.keys()).rejects.toMatchObject({ status: 401, code: 'AUTH_KEY_DISABLED' });
    await expect(second.disableKey(created.id)).rejects.toMatchObject({ status: 409, code: 'LAST_ACTIVE_KEY' });
    await expect(second.deleteKey(created.id)).rejects.toMatchObject({ status: 409, code: 'LAST_ACTIVE_KEY' });
    await second.deleteKey(app.keyId);
    await expect(first.keys()).rejects.toMatchObject({ status: 401, code: 'AUTH_UNKNOWN_KEY' });
    expect((await second.keys()).keys.map((k) => k.id)).toEqual([created.id]);
    await expect(second.enableKey('key_nope')).rejects.toMatchObject({ status: 404, code: 'KEY_NOT_FOUND' });
  });

  for (const kind of ['rsa', 'ed25519'] as const) {
    it(`signs with the private half of an uploaded ${kind} key, which never leaves the business server`, async () => {
      const owner = await stack.createApp(kind);
      const pair =
        kind === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ed25519');
      const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const privatePem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const uploaded = await stack.api(owner).createKey(kind, publicPem);
      expect(uploaded).toEqual({ id: expect.any(String), kind, status: 'active', createdAt: expect.any(String) });

      const api = client(uploaded.id, { privateKey: privatePem });
      const device = await stack.device(owner);
      const pushed = await api.pushSimple({ target: { device: device.id }, title: `signed with ${kind}` });
      expect((await device.waitFor(1))[0]?.id).toBe(pushed.messageId);
      // Device tokens can be signed with the same key (RS256 / EdDSA).
      expect(await device.client.bind(await api.bindToken(`user-${kind}`))).toBe(`user-${kind}`);

      const stranger = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
      const forged = client(uploaded.id, { privateKey: stranger.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
      await expect(forged.keys()).rejects.toMatchObject({ status: 401, code: 'AUTH_BAD_SIGNATURE' });
    });
  }

  it('refuses a public key that is weak, of the wrong type, or not a key', async () => {
    const owner = await stack.createApp('weak');
    const api = stack.api(owner);
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await expect(api.createKey('rsa', weak)).rejects.toMatchObject({ status: 400, code: 'INVALID_KEY' });
    await expect(api.createKey('rsa', ed)).rejects.toMatchObject({ status: 400, code: 'INVALID_KEY' });
    await expect(api.createKey('ed25519', 'hello')).rejects.toMatchObject({ status: 400, code: 'INVALID_KEY' });
    await expect(api.createKey('ed25519')).rejects.toMatchObject({ status: 400, code: 'INVALID_KEY' });
    const privatePem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await expect(api.createKey('ed25519', privatePem)).rejects.toMatchObject({ status: 400, code: 'INVALID_KEY' });
    expect((await api.keys()).keys).toHaveLength(1);
  });
});
