/** Tags and attributes of devices and users set by the business server, and conditions over them. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCredentialStore } from '@mps/sdk';
import { CloseCode } from '@mps/shared';
import type { CreatedApp } from '@mps/control-plane';
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
});
