/** Broadcasts: stored once, fanned out to connected devices, caught up by reconnecting ones. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCredentialStore } from '@mps/sdk';
import type { CreatedApp } from '@mps/control-plane';
import { eventually } from './support/services.js';
import { startTestStack, type TestDevice, type TestStack } from './support/stack.js';

describe('broadcast', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => stack?.stop());

  const settle = () => new Promise((r) => setTimeout(r, 300));

  async function tagged(app: CreatedApp, tags: string[], attributes: Record<string, string> = {}): Promise<TestDevice> {
    const device = await stack.device(app);
    if (tags.length > 0) device.client.setTags({ add: tags });
    if (Object.keys(attributes).length > 0) device.client.setAttributes(attributes);
    await eventually(async () => {
      const r = await stack.database.db.query<{ tags: string[]; attributes: object }>('SELECT tags, attributes FROM devices WHERE id = $1', [device.id]);
      const row = r.rows[0];
      return row && row.tags.length === tags.length && Object.keys(row.attributes).length === Object.keys(attributes).length ? true : undefined;
    });
    return device;
  }

  it('reaches every connected device of the app, and no other app', async () => {
    const app = await stack.createApp('all');
    const other = await stack.createApp('other');
    const devices = [await stack.device(app), await stack.device(app), await stack.device(app)];
    const stranger = await stack.device(other);
    const pushed = await stack.api(app).pushBroadcast({ title: 'to everyone' });
    expect(pushed).toMatchObject({ targeted: 3, duplicate: false });
    for (const d of devices) expect((await d.waitFor(1))[0]).toMatchObject({ id: pushed.messageId, title: 'to everyone' });
    await settle();
    expect(stranger.shown).toEqual([]);
    expect((await stack.api(app).message(pushed.messageId)).counts.targeted).toBe(3);
  });

  it('reaches only the devices whose tags, attributes and facts match, as the dry run counts', async () => {
    const app = await stack.createApp('cond');
    const vipGold = await tagged(app, ['vip'], { tier: 'gold' });
    const vipSilver = await tagged(app, ['vip'], { tier: 'silver' });
    const vipNoTier = await tagged(app, ['vip']);
    const plain = await tagged(app, []);
    const condition = { and: [{ tag: 'vip' }, { not: { attribute: 'tier', equals: 'gold' } }, { fact: 'platform', in: ['android'] }] };
    const api = stack.api(app);
    expect(await api.dryRun({ condition })).toEqual({ devices: 2 });
    const pushed = await api.pushBroadcast({ title: 'vip but not gold', condition });
    expect(pushed.targeted).toBe(2);
    await vipSilver.waitFor(1);
    await vipNoTier.waitFor(1);
    await settle();
    expect(vipGold.shown).toEqual([]);
    expect(plain.shown).toEqual([]);
  });

  it('limits to bound or unbound devices when asked', async () => {
    const app = await stack.createApp('aud');
    const api = stack.api(app);
    const bound = await stack.device(app);
    await bound.client.bind(await api.bindToken('frank'));
    const unbound = await stack.device(app);
    expect(await api.dryRun({ audience: 'bound' })).toEqual({ devices: 1 });
    await api.pushBroadcast({ title: 'bound only', audience: 'bound' });
    await api.pushBroadcast({ title: 'unbound only', audience: 'unbound' });
    expect((await bound.waitFor(1)).map((m) => m.title)).toEqual(['bound only']);
    expect((await unbound.waitFor(1)).map((m) => m.title)).toEqual(['unbound only']);
    await settle();
    expect(bound.shown).toHaveLength(1);
    expect(unbound.shown).toHaveLength(1);
  });

  it('catches a reconnecting device up once; a device registered later does not get it', async () => {
    const app = await stack.createApp('catch');
    const api = stack.api(app);
    const credentials = new MemoryCredentialStore();
    const away = await stack.device(app, { credentials });
    away.client.close();
    const pushed = await api.pushBroadcast({ title: 'while you were away' });
    const later = await stack.device(app);

    const back = await stack.device(app, { credentials });
    expect((await back.waitFor(1))[0]?.id).toBe(pushed.messageId);
    // Its ack moves the device's cursor, so the next connection does not send it again.
    await eventually(async () => {
      const r = await stack.database.db.query<{ broadcast_cursor: string }>('SELECT broadcast_cursor FROM devices WHERE id = $1', [back.id]);
      return r.rows[0]?.broadcast_cursor === pushed.messageId ? true : undefined;
    }, 10_000, 'the cursor to move');
    back.client.close();
    const again = await stack.device(app, { credentials: new MemoryCredentialStore(await credentials.load()) });
    await settle();
    expect(again.shown).toEqual([]);
    expect(later.shown).toEqual([]);
  });

  it('withdraws a revoked broadcast from connected devices and stops its catch-up', async () => {
    const app = await stack.createApp('rev');
    const api = stack.api(app);
    const here = await stack.device(app);
    const credentials = new MemoryCredentialStore();
    const away = await stack.device(app, { credentials });
    away.client.close();
    const pushed = await api.pushBroadcast({ title: 'mistake' });
    await here.waitFor(1);
    await api.revoke(pushed.messageId);
    await eventually(async () => (here.revoked.includes(pushed.messageId) ? true : undefined), 5000, 'the revoke');
    const back = await stack.device(app, { credentials });
    await settle();
    expect(back.shown).toEqual([]);
  });

  it('reaches only devices seen within the period: connected ones, and by their previous connection on catch-up', async () => {
    const app = await stack.createApp('seen');
    const api = stack.api(app);
    const here = await stack.device(app);
    const recentCredentials = new MemoryCredentialStore();
    const recent = await stack.device(app, { credentials: recentCredentials });
    recent.client.close();
    const staleCredentials = new MemoryCredentialStore();
    const stale = await stack.device(app, { credentials: staleCredentials });
    stale.client.close();
    await stack.database.db.query(`UPDATE devices SET last_seen_at = now() - interval '2 days' WHERE id = $1`, [stale.id]);

    expect(await api.dryRun({ seenWithinS: 86_400 })).toEqual({ devices: 2 });
    const pushed = await api.pushBroadcast({ title: 'seen lately', seenWithinS: 86_400 });
    expect(pushed.targeted).toBe(2);
    expect((await here.waitFor(1))[0]?.id).toBe(pushed.messageId);
    const recentBack = await stack.device(app, { credentials: recentCredentials });
    expect((await recentBack.waitFor(1))[0]?.id).toBe(pushed.messageId);
    const staleBack = await stack.device(app, { credentials: staleCredentials });
    await settle();
    expect(staleBack.shown).toEqual([]);
  });

  it('spreads a throttled broadcast over its window: no device before its slot, every device in the end', async () => {
    const app = await stack.createApp('spread');
    const api = stack.api(app);
    const devices = await Promise.all(Array.from({ length: 8 }, () => stack.device(app)));
    // A device's frames are handled in order after its authentication, catch-up included: once it
    // is bound, its catch-up has run, and cannot hand it the broadcast below ahead of its slot.
    await Promise.all(devices.map(async (d, i) => d.client.bind(await api.bindToken(`spread-${i}`))));
    const arrived = new Map<string, number>();
    for (const d of devices) d.client.on('message', () => arrived.set(d.id, Date.now()));
    const sentAt = Date.now();
    const pushed = await api.pushBroadcast({ title: 'in turn', spreadS: 2 });
    for (const d of devices) expect((await d.waitFor(1))[0]?.id).toBe(pushed.messageId);
    // The gateway's slot of a device: its id's last 32 bits modulo the 100 ms steps of the window.
    const slotMs = (id: string) => (Number.parseInt(id.slice(-8), 16) % 20) * 100;
    for (const d of devices) expect(arrived.get(d.id)! - sentAt).toBeGreaterThanOrEqual(slotMs(d.id) - 20);
    await expect(api.pushBroadcast({ title: 'x', spreadS: 120, ttl: 60 })).rejects.toMatchObject({ status: 400, code: 'SPREAD_TOO_LONG' });
  });

  it('refuses a malformed condition with INVALID_CONDITION', async () => {
    const app = await stack.createApp('bad');
    await expect(stack.api(app).pushBroadcast({ title: 'x', condition: { attribute: 'tier' } })).rejects.toMatchObject({
      status: 400,
      code: 'INVALID_CONDITION',
    });
    await expect(stack.api(app).dryRun({ condition: { nand: [] } })).rejects.toMatchObject({ status: 400, code: 'INVALID_CONDITION' });
  });
});
