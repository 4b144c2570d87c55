/** Templates, template pushes and multiple pushes (tasks), through the real SDKs. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedApp } from '@mps/control-plane';
import { eventually } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';

describe('templates and multiple pushes', () => {
  let stack: TestStack;
  let app: CreatedApp;

  beforeAll(async () => {
    stack = await startTestStack();
    app = await stack.createApp('tpl');
  });
  afterAll(async () => stack?.stop());

  it('creates, reads, lists, replaces and deletes templates, naming their placeholders', async () => {
    const api = stack.api(app);
    const created = await api.putTemplate({ name: 'order', title: 'Order {{ id }}', body: 'Hi {{name}}, order {{id}} ships {{when}}', extras: { link: 'app://o/{{id}}' } });
    expect(created.placeholders).toEqual(['id', 'name', 'when']);
    expect(await api.template('order')).toMatchObject({ name: 'order', title: 'Order {{ id }}' });
    await api.putTemplate({ name: 'order', title: 'Order {{id}}', body: 'Hi {{name}}' });
    expect((await api.template('order')).placeholders).toEqual(['id', 'name']);
    await api.putTemplate({ name: 'promo', body: 'Sale!' });
    expect((await api.templates()).templates.map((t) => t.name)).toEqual(['order', 'promo']);
    await api.deleteTemplate('promo');
    await expect(api.template('promo')).rejects.toMatchObject({ status: 404, code: 'TEMPLATE_NOT_FOUND' });
    await expect(api.putTemplate({ name: 'empty' })).rejects.toMatchObject({ status: 400, code: 'EMPTY_TEMPLATE' });
    await expect(api.putTemplate({ name: 'bad name!', body: 'x' })).rejects.toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
  });

  it('renders a template push, and refuses one with a missing value, naming it, storing nothing', async () => {
    const api = stack.api(app);
    await api.putTemplate({ name: 'welcome', title: 'Welcome {{name}}', body: 'Your code is {{code}}', extras: { k: '{{code}}' } });
    const device = await stack.device(app);
    const pushed = await api.pushTemplate({ target: { device: device.id }, template: 'welcome', values: { name: 'Ana', code: '42' } });
    expect((await device.waitFor(1))[0]).toMatchObject({ id: pushed.messageId, title: 'Welcome Ana', body: 'Your code is 42', extras: { k: '42' } });
    expect((await api.message(pushed.messageId)).mode).toBe('template');

    const before = (await api.messages()).messages.length;
    await expect(api.pushTemplate({ target: { device: device.id }, template: 'welcome', values: { name: 'Ana' } })).rejects.toMatchObject({
      status: 400,
      code: 'MISSING_PLACEHOLDER',
      message: expect.stringContaining('code'),
    });
    await expect(api.pushTemplate({ target: { device: device.id }, template: 'nope' })).rejects.toMatchObject({ status: 404, code: 'TEMPLATE_NOT_FOUND' });
    expect((await api.messages()).messages.length).toBe(before);
  });

  it('sends a multiple push with per-target values as one task, revocable as a whole', async () => {
    const api = stack.api(app);
    const a = await stack.device(app);
    const b = await stack.device(app);
    const u = await stack.device(app);
    await u.client.bind(await api.bindToken('gina'));
    const task = await api.pushMultiple({
      title: 'Hello {{name}}',
      body: 'You owe {{amount}}',
      targets: [
        { device: a.id, values: { name: 'A', amount: '1' } },
        { device: b.id, values: { name: 'B', amount: '2' } },
        { user: 'gina', values: { name: 'Gina', amount: '3' } },
      ],
    });
    expect(task.messages.map((m) => m.targeted)).toEqual([1, 1, 1]);
    expect((await a.waitFor(1))[0]).toMatchObject({ title: 'Hello A', body: 'You owe 1' });
    expect((await b.waitFor(1))[0]).toMatchObject({ title: 'Hello B', body: 'You owe 2' });
    expect((await u.waitFor(1))[0]).toMatchObject({ title: 'Hello Gina', body: 'You owe 3' });

    const status = await eventually(async () => {
      const t = await api.task(task.taskId);
      return t.counts.delivered === 3 ? t : undefined;
    });
    expect(status.counts).toMatchObject({ targeted: 3, delivered: 3 });
    expect(status.messages.every((m) => m.taskId === task.taskId && m.mode === 'multiple')).toBe(true);

    const revoked = await api.revokeTask(task.taskId);
    expect(revoked.messages).toHaveLength(3);
    await eventually(async () => (a.revoked.length === 1 && b.revoked.length === 1 && u.revoked.length === 1 ? true : undefined), 5000, 'revokes');
  });

  it('refuses a whole multiple push when one target lacks a value, and answers a retried business id with the first task', async () => {
    const api = stack.api(app);
    const a = await stack.device(app);
    await expect(
      api.pushMultiple({ title: 'Hi {{name}}', targets: [{ device: a.id, values: { name: 'x' } }, { device: a.id }] }),
    ).rejects.toMatchObject({ status: 400, code: 'MISSING_PLACEHOLDER' });
    await expect(api.pushMultiple({ title: 'x', targets: [{ device: a.id }, {} as { device: string }] })).rejects.toMatchObject({ status: 400, code: 'INVALID_TARGET' });
    await new Promise((r) => setTimeout(r, 200));
    expect(a.shown).toEqual([]);

    const push = { title: 'once', businessId: 'campaign-9', targets: [{ device: a.id }, { user: 'nobody' }] };
    const first = await api.pushMultiple(push);
    const again = await api.pushMultiple(push);
    expect(again).toEqual({ ...first, duplicate: true });
  });

  it('lists messages newest first with paging', async () => {
    const api = stack.api(app);
    const first = await api.messages({ limit: 2 });
    expect(first.messages).toHaveLength(2);
    expect(first.next).toBe(first.messages[1]?.id);
    const second = await api.messages({ limit: 2, before: first.next as string });
    expect((second.messages[0]?.id as string) < (first.messages[1]?.id as string)).toBe(true);
    const templates = await api.messages({ mode: 'template' });
    expect(templates.messages.every((m) => m.mode === 'template')).toBe(true);
    expect(templates.messages.length).toBeGreaterThan(0);
  });
});
