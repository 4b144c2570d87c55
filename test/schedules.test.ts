/** Scheduled pushes: at an instant, at a local time per time zone, and cancelled before they fire. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedApp } from '@mps/control-plane';
import { eventually } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';

describe('scheduled pushes', () => {
  let stack: TestStack;
  let app: CreatedApp;

  beforeAll(async () => {
    stack = await startTestStack();
    app = await stack.createApp('schedules');
  });
  afterAll(async () => stack?.stop());

  it('sends a push at the time asked, not before', async () => {
    const api = stack.api(app);
    const device = await stack.device(app);
    const at = new Date(Date.now() + 2000);
    const scheduled = await api.schedulePush('simple', { target: { device: device.id }, title: 'later' }, { at: at.toISOString() });
    expect(scheduled.fireAt).toEqual([at.toISOString()]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(device.shown).toEqual([]);
    const [message] = await device.waitFor(1, 10_000);
    expect(message?.title).toBe('later');
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime());
    const status = await eventually(async () => {
      const s = await api.schedule(scheduled.scheduleId);
      return s.firings[0]?.status === 'fired' ? s : undefined;
    });
    expect(status.firings[0]?.result).toMatchObject({ messageId: message?.id, targeted: 1 });
  });

  it('cancels a schedule before it fires, and refuses to cancel one that fired', async () => {
    const api = stack.api(app);
    const device = await stack.device(app);
    const scheduled = await api.schedulePush('simple', { target: { device: device.id }, title: 'never' }, { at: new Date(Date.now() + 1500).toISOString() });
    expect(await api.cancelSchedule(scheduled.scheduleId)).toEqual({ cancelled: 1 });
    expect(await api.cancelSchedule(scheduled.scheduleId)).toEqual({ cancelled: 0 });
    await new Promise((r) => setTimeout(r, 2500));
    expect(device.shown).toEqual([]);
    expect((await api.schedule(scheduled.scheduleId)).firings[0]?.status).toBe('cancelled');

    const fired = await api.schedulePush('simple', { target: { device: device.id }, title: 'fired' }, { at: new Date(Date.now() + 200).toISOString() });
    await device.waitFor(1);
    await eventually(async () => ((await api.schedule(fired.scheduleId)).firings[0]?.status === 'fired' ? true : undefined));
    await expect(api.cancelSchedule(fired.scheduleId)).rejects.toMatchObject({ status: 409, code: 'ALREADY_FIRED' });
  });

  it('fires a local-time broadcast once per time zone, each to the devices of that zone', async () => {
    const owner = await stack.createApp('zones');
    const api = stack.api(owner);
    const lisbon = await stack.device(owner, { timezone: 'Europe/Lisbon' });
    const tokyo = await stack.device(owner, { timezone: 'Asia/Tokyo' });
    const nowhere = await stack.device(owner);
    // A wall-clock time that has just passed in Tokyo and Lisbon and UTC: each zone fires at once.
    const local = new Date(Date.now() - 60_000).toISOString().slice(0, 16);
    const scheduled = await api.schedulePush('broadcast', { title: 'good morning' }, { localTime: local });
    expect(scheduled.fireAt).toHaveLength(3);
    for (const d of [lisbon, tokyo, nowhere]) expect((await d.waitFor(1))[0]?.title).toBe('good morning');
    await new Promise((r) => setTimeout(r, 500));
    expect([lisbon, tokyo, nowhere].map((d) => d.shown.length)).toEqual([1, 1, 1]);
    const status = await eventually(async () => {
      const s = await api.schedule(scheduled.scheduleId);
      return s.firings.every((f) => f.status === 'fired') ? s : undefined;
    });
    expect(status.firings.map((f) => f.timeZone).sort()).toEqual(['Asia/Tokyo', 'Europe/Lisbon', 'UTC']);
  });

  it("turns a local time into the instant it is in the device's zone", async () => {
    const owner = await stack.createApp('future');
    const api = stack.api(owner);
    const device = await stack.device(owner, { timezone: 'America/New_York' });
    const day = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
    const scheduled = await api.schedulePush('simple', { target: { device: device.id }, title: 'x' }, { localTime: `${day}T09:00` });
    const offsetHours = new Date(`${day}T12:00:00Z`).toLocaleString('en-US', { timeZone: 'America/New_York', hour: 'numeric', hour12: false });
    // 12:00 UTC shows as 07 (EST, UTC-5) or 08 (EDT, UTC-4) in New York: 09:00 there is 14:00 or 13:00 UTC.
    const expectedHour = 9 + (12 - Number(offsetHours));
    expect(scheduled.fireAt).toEqual([`${day}T${String(expectedHour).padStart(2, '0')}:00:00.000Z`]);
    expect(await api.cancelSchedule(scheduled.scheduleId)).toEqual({ cancelled: 1 });
  });

  it('refuses a schedule in the past, too far ahead, or with both forms, storing nothing', async () => {
    const api = stack.api(app);
    const device = await stack.device(app);
    const push = { target: { device: device.id }, title: 'x' };
    await expect(api.schedulePush('simple', push, { at: new Date(Date.now() - 60_000).toISOString() })).rejects.toMatchObject({ code: 'INVALID_SCHEDULE' });
    await expect(api.schedulePush('simple', push, { at: new Date(Date.now() + 40 * 86_400_000).toISOString() })).rejects.toMatchObject({ code: 'INVALID_SCHEDULE' });
    await expect(api.schedulePush('simple', push, { at: new Date().toISOString(), localTime: '2030-01-01T09:00' } as never)).rejects.toMatchObject({ code: 'INVALID_SCHEDULE' });
    await expect(api.schedulePush('template', { target: { device: device.id }, template: 'missing' }, { at: new Date(Date.now() + 60_000).toISOString() })).rejects.toMatchObject({ code: 'TEMPLATE_NOT_FOUND' });
  });
});
