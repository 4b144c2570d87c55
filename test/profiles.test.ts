/**
 * Devices and users as the business server manages them: tags and attributes and conditions over
 * them, and revoking a device's credentials (POST /v1/devices/{id}/revoke).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceClient, MemoryCredentialStore, type PushClient } from '@mps/sdk';
import { CloseCode, decodeServerFrame, encodeFrame, FrameType, type AuthFrame, type ReadyFrame, type RegisterFrame } from '@mps/shared';
import type { CreatedApp } from '@mps/control-plane';
import { RawSocket, startTestGateway } from './support/gateway.js';
import { eventually } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';

describe('device and user profiles', () => {
  let stack: TestStack;
  let app: CreatedApp;

  beforeAll(async () => {
    stack = await startTestStack();
    app = await stack.createApp('profiles');
  });
  afterAll(async () => stack?.stop());

  const settle = () => new Promise((r) => setTimeout(r, 300));

  it('looks up a device with its user, tags, attributes and masked vendor tokens', async () => {
    const api = stack.api(app);
    const device = await stack.device(app, { appVersion: '3.1.0', locale: 'pt-PT' });
    await device.client.bind(await api.bindToken('hana'));
    device.client.setVendorToken('apns', 'a1b2c3d4e5f6a7b8c9d0e1f2');
    expect(await api.changeTags({ device: device.id }, { add: ['beta'] })).toEqual({ tags: ['beta'], attributes: {} });
    const info = await eventually(async () => {
      const d = await api.device(device.id);
      return Object.keys(d.vendorTokens).length === 1 ? d : undefined;
    });
    expect(info).toMatchObject({ id: device.id, userId: 'hana', platform: 'android', appVersion: '3.1.0', locale: 'pt-PT', tags: ['beta'] });
    expect(info.vendorTokens).toEqual({ apns: 'a1b2…e1f2' });
    expect((await api.user('hana')).devices.map((d) => d.id)).toEqual([device.id]);
    await expect(stack.api(await stack.createApp('x')).device(device.id)).rejects.toMatchObject({ status: 404, code: 'DEVICE_NOT_FOUND' });
  });

  it('selects connected devices by tags the API just set, without a reconnect', async () => {
    const api = stack.api(app);
    const device = await stack.device(app);
    await api.changeTags({ device: device.id }, { add: ['flash-sale'] });
    await api.changeAttributes({ device: device.id }, { city: 'Porto' });
    await settle();
    const condition = { and: [{ tag: 'flash-sale' }, { attribute: 'city', equals: 'Porto' }] };
    expect(await api.dryRun({ condition })).toEqual({ devices: 1 });
    await api.pushBroadcast({ title: 'sale in Porto', condition });
    expect((await device.waitFor(1))[0]?.title).toBe('sale in Porto');
  });

  it('applies user tags and attributes to every device of the user, also after a reconnect', async () => {
    const api = stack.api(app);
    const credentials = new MemoryCredentialStore();
    const phone = await stack.device(app, { credentials });
    const tablet = await stack.device(app);
    const other = await stack.device(app);
    await phone.client.bind(await api.bindToken('ivan'));
    await tablet.client.bind(await api.bindToken('ivan'));
    await other.client.bind(await api.bindToken('judy'));
    expect(await api.changeTags({ user: 'ivan' }, { add: ['premium'] })).toEqual({ tags: ['premium'], attributes: {} });
    expect(await api.changeAttributes({ user: 'ivan' }, { tier: 'gold' })).toEqual({ tags: ['premium'], attributes: { tier: 'gold' } });
    // The user's value wins over the device's own.
    await api.changeAttributes({ device: tablet.id }, { tier: 'bronze' });
    await settle();

    const condition = { and: [{ tag: 'premium' }, { attribute: 'tier', equals: 'gold' }] };
    expect(await api.dryRun({ condition })).toEqual({ devices: 2 });
    const first = await api.pushBroadcast({ title: 'gold members', condition });
    expect(first.targeted).toBe(2);
    await phone.waitFor(1);
    await tablet.waitFor(1);
    await settle();
    expect(other.shown).toEqual([]);

    // Once its ack is recorded, the reconnecting phone is sent only what it missed.
    await eventually(async () => {
      const r = await stack.database.db.query<{ broadcast_cursor: string }>('SELECT broadcast_cursor FROM devices WHERE id = $1', [phone.id]);
      return r.rows[0]?.broadcast_cursor === first.messageId ? true : undefined;
    });
    phone.client.close();
    const second = await api.pushBroadcast({ title: 'still gold', condition });
    const back = await stack.device(app, { credentials });
    expect((await back.waitFor(1))[0]?.id).toBe(second.messageId);
    expect(await api.user('ivan')).toMatchObject({ tags: ['premium'], attributes: { tier: 'gold' } });
  });

  it('refuses more tags than the limit and changes nothing', async () => {
    const api = stack.api(app);
    const tags = Array.from({ length: 100 }, (_, i) => `t${i}`);
    await api.changeTags({ user: 'kim' }, { add: tags });
    await expect(api.changeTags({ user: 'kim' }, { add: ['one-too-many'] })).rejects.toMatchObject({ status: 400, code: 'PROFILE_LIMIT' });
    expect((await api.user('kim')).tags).toHaveLength(100);
  });

  it('keeps attributes to the names the app declared, from the API and from devices', async () => {
    const own = await stack.createApp('named');
    const api = stack.api(own);
    expect(await api.attributeNames()).toEqual({ names: null });
    expect(await api.setAttributeNames(['tier', 'city', 'tier'])).toEqual({ names: ['city', 'tier'] });
    await expect(api.setAttributeNames(Array.from({ length: 11 }, (_, i) => `a${i}`))).rejects.toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    const device = await stack.device(own);
    expect(await api.changeAttributes({ device: device.id }, { tier: 'gold' })).toEqual({ tags: [], attributes: { tier: 'gold' } });
    await expect(api.changeAttributes({ device: device.id }, { tier: 'silver', shoe: '42' })).rejects.toMatchObject({ status: 400, code: 'UNKNOWN_ATTRIBUTE' });
    await expect(api.changeAttributes({ user: 'lee' }, { shoe: '42' })).rejects.toMatchObject({ status: 400, code: 'UNKNOWN_ATTRIBUTE' });
    expect((await api.device(device.id)).attributes).toEqual({ tier: 'gold' });
    expect((await api.user('lee')).attributes).toEqual({});

    // A device setting an undeclared name is closed, and nothing changes.
    const closed = new Promise<number | undefined>((resolve) =>
      device.client.on('error', (error) => error.code === 'closed_by_server' && resolve(error.close?.code)),
    );
    device.client.setAttributes({ shoe: '42' });
    expect(await closed).toBe(CloseCode.INVALID_FRAME.code);
    expect((await api.device(device.id)).attributes).toEqual({ tier: 'gold' });
    expect(await api.setAttributeNames(null)).toEqual({ names: null });
    expect(await api.changeAttributes({ user: 'lee' }, { shoe: '42' })).toEqual({ tags: [], attributes: { shoe: '42' } });
  });

  describe("revoking a device's credentials", () => {
    /** Generous for a shared, loaded machine: the close normally follows the answer within milliseconds. */
    const CLOSE_BOUND_MS = 2000;

    /** A device registered and connected through the SDK, with the credentials it stored and the close codes it got. */
    async function connected(url: string) {
      const credentials = new MemoryCredentialStore();
      const client = new DeviceClient({ url, app: app.app, platform: 'ios', credentials, reconnect: { initialMs: 50, maxMs: 100 } });
      const closes: { code: number; at: number }[] = [];
      client.on('error', (e) => e.close && closes.push({ code: e.close.code, at: Date.now() }));
      await client.connect();
      const { device, secret } = (await credentials.load())!;
      return { client, device, secret, closes };
    }

    /** A raw socket that sent `frame` as its first frame. */
    async function raw(frame: AuthFrame | RegisterFrame, url = stack.gateway.url): Promise<RawSocket> {
      const socket = new RawSocket(url);
      await socket.send(encodeFrame(frame));
      return socket;
    }
    const auth = (device: string, proof: { secret: string } | { token: string }): AuthFrame =>
      ({ t: FrameType.AUTH, v: 1, app: app.app, device, platform: 'ios', ...proof }) as AuthFrame;
    const ready = async (socket: RawSocket) => decodeServerFrame(await socket.frame(1)) as ReadyFrame;
    const refused = { code: CloseCode.AUTH_FAILED.code, reason: CloseCode.AUTH_FAILED.reason };

    it('closes its connections on every gateway with 4017 revoked, and the SDK stops', async () => {
      const api = stack.api(app);
      const second = await startTestGateway(stack.database.db, stack.nats, stack.masterKey);
      try {
        const onFirst = await connected(stack.gateway.url);
        const onSecond = await connected(second.url);
        // Authenticated with a connect token issued before the revocation: closed as well.
        const byToken = await connected(stack.gateway.url);
        byToken.client.close();
        const tokenSocket = await raw(auth(byToken.device, { token: await api.connectToken(byToken.device) }), second.url);
        expect((await ready(tokenSocket)).device).toBe(byToken.device);

        const started = Date.now();
        const answers = await Promise.all([onFirst, onSecond, byToken].map((d) => api.revokeDevice(d.device)));
        for (const [i, d] of [onFirst, onSecond, byToken].entries()) {
          expect(Object.keys(answers[i]!).sort()).toEqual(['id', 'revokedAt']);
          expect(answers[i]!.id).toBe(d.device);
        }
        const tokenClosed = await tokenSocket.closed;
        const tokenClosedAt = Date.now();
        for (const d of [onFirst, onSecond]) {
          await eventually(async () => (d.client.state === 'closed' ? true : undefined), CLOSE_BOUND_MS + 1000, 'the SDK to stop');
          expect(d.closes.map((c) => c.code)).toEqual([CloseCode.REVOKED.code]);
          expect(d.closes[0]!.at - started).toBeLessThan(CLOSE_BOUND_MS);
        }
        expect(tokenClosed).toEqual({ code: CloseCode.REVOKED.code, reason: 'revoked' });
        expect(tokenClosedAt - started).toBeLessThan(CLOSE_BOUND_MS);
        const info = await api.device(onFirst.device);
        expect(info).toMatchObject({ online: false, revokedAt: answers[0]!.revokedAt });
      } finally {
        await second.close();
      }
    });

    it('refuses its secret, REGISTER with its id and secret, and connect tokens up to the revocation; a later token connects', async () => {
      const api = stack.api(app);
      const d = await connected(stack.gateway.url);
      const early = await api.connectToken(d.device);
      const revoked = await api.revokeDevice(d.device);
      const revokedAt = Date.parse(revoked.revokedAt);

      expect(await (await raw(auth(d.device, { secret: d.secret }))).closed).toEqual(refused);
      const again: RegisterFrame = { t: FrameType.REGISTER, v: 1, app: app.app, device: d.device, secret: d.secret, platform: 'ios' };
      expect(await (await raw(again)).closed).toEqual(refused);
      expect(await (await raw(auth(d.device, { token: early }))).closed).toEqual(refused);
      // The SDK with the stored credentials is refused too, and stops.
      const states: string[] = [];
      d.client.on('state', (s) => states.push(s));
      await expect(d.client.connect()).rejects.toMatchObject({ close: CloseCode.AUTH_FAILED });
      expect(d.client.state).toBe('closed');

      // A token issued in a later second than the revocation vouches for the device again, under its id.
      await new Promise((r) => setTimeout(r, Math.floor(revokedAt / 1000 + 1) * 1000 + 50 - Date.now()));
      const late = await raw(auth(d.device, { token: await api.connectToken(d.device) }));
      expect((await ready(late)).device).toBe(d.device);
      // Revoking again changes nothing (the same time) and leaves that connection open, past the repeated word to the gateways.
      expect(await api.revokeDevice(d.device)).toEqual(revoked);
      let open = true;
      void late.closed.then(() => (open = false));
      await new Promise((r) => setTimeout(r, 1500));
      expect(open).toBe(true);
      late.close();
      expect(await (await raw(auth(d.device, { secret: d.secret }))).closed).toEqual(refused);

      // Registering anew is a new device, with its own id and secret.
      const fresh = await ready(await raw({ t: FrameType.REGISTER, v: 1, app: app.app, platform: 'ios' }));
      expect(fresh.device).not.toBe(d.device);
      expect(fresh.secret).toBeDefined();
    });

    it("is 404 for another app's device and 400 for a malformed id, and changes nothing", async () => {
      const d = await connected(stack.gateway.url);
      const other: PushClient = stack.api(await stack.createApp('other'));
      await expect(other.revokeDevice(d.device)).rejects.toMatchObject({ status: 404, code: 'DEVICE_NOT_FOUND' });
      await expect(other.revokeDevice('not-a-uuid')).rejects.toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
      await expect(stack.api(app).revokeDevice('0193e6f1-0000-7000-8000-000000000000')).rejects.toMatchObject({ status: 404, code: 'DEVICE_NOT_FOUND' });
      await new Promise((r) => setTimeout(r, 300));
      expect(d.client.state).toBe('ready');
      expect(d.closes).toEqual([]);
      expect((await stack.api(app).device(d.device)).revokedAt).toBeNull();
      d.client.close();
      const back = await ready(await raw(auth(d.device, { secret: d.secret })));
      expect(back.device).toBe(d.device);
    });
  });
});
