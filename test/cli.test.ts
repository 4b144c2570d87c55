/** The mps command line against the real stack (in-process main, and the installed bin once). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedApp } from '@mps/control-plane';
import { main } from '../sdk/src/cli.js';
import { eventually, ROOT } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';

describe('mps command line', () => {
  let stack: TestStack;
  let app: CreatedApp;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    stack = await startTestStack();
    app = await stack.createApp('cli');
    dir = await mkdtemp(join(tmpdir(), 'mps-cli-'));
    file = join(dir, 'credentials.json');
    await writeFile(file, JSON.stringify({ ...app, apiUrl: stack.apiUrl, gatewayUrl: stack.gateway.url }));
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function mps(...argv: string[]): Promise<unknown> {
    const lines: string[] = [];
    await main([...argv, '--credentials', file, '--json'], (line) => lines.push(line));
    return JSON.parse(lines.at(-1) as string);
  }

  it('pushes to a device, shows the message status and a report, and revokes it', async () => {
    const device = await stack.device(app);
    const pushed = (await mps('push', '--device', device.id, '--title', 'from the CLI', '--payload', '{"a":1}')) as { messageId: string };
    expect((await device.waitFor(1))[0]).toMatchObject({ id: pushed.messageId, title: 'from the CLI', payload: { a: 1 } });
    const status = await eventually(async () => {
      const s = (await mps('message', pushed.messageId)) as { counts: { delivered: number } };
      return s.counts.delivered === 1 ? s : undefined;
    });
    expect(status).toMatchObject({ id: pushed.messageId, counts: { targeted: 1, delivered: 1 } });
    expect(await mps('report', pushed.messageId)).toMatchObject({ deliveryRate: 1 });
    expect(await mps('revoke', pushed.messageId)).toMatchObject({ id: pushed.messageId });
    expect(((await mps('messages', '--limit', '1')) as { messages: { id: string }[] }).messages[0]?.id).toBe(pushed.messageId);
  });

  it('manages templates and pushes with one, and broadcasts to tags', async () => {
    await mps('templates', 'put', 'hello', '--title', 'Hello {{name}}');
    expect(await mps('templates', 'get', 'hello')).toMatchObject({ name: 'hello', placeholders: ['name'] });
    expect(((await mps('templates', 'list')) as { templates: unknown[] }).templates).toHaveLength(1);
    const device = await stack.device(app);
    await mps('push', '--device', device.id, '--template', 'hello', '--vars', 'name=Lia');
    expect((await device.waitFor(1))[0]?.title).toBe('Hello Lia');

    const tagged = await stack.device(app);
    await stack.api(app).changeTags({ device: tagged.id }, { add: ['news'] });
    await new Promise((r) => setTimeout(r, 300));
    expect(await mps('push', '--broadcast', '--tags-or', 'news,sports', '--title', 'headline')).toMatchObject({ targeted: 1 });
    expect((await tagged.waitFor(1))[0]?.title).toBe('headline');
    expect(await mps('templates', 'delete', 'hello')).toEqual({ deleted: 'hello' });
  });

  it('lists and creates keys', async () => {
    const created = (await mps('keys', 'create')) as { id: string; secret: string };
    expect(created.secret).toBeDefined();
    const listed = (await mps('keys', 'list')) as { keys: { id: string }[] };
    expect(listed.keys.map((k) => k.id)).toEqual([app.keyId, created.id]);
    expect(await mps('keys', 'disable', created.id)).toMatchObject({ status: 'disabled' });
    expect(await mps('keys', 'delete', created.id)).toEqual({ deleted: created.id });
  });

  it('simulates devices that print what they receive', async () => {
    const lines: string[] = [];
    const run = main(['device', 'simulate', '--count', '2', '--seconds', '3', '--credentials', file], (line) => lines.push(line));
    await eventually(async () => (lines.some((l) => l.includes('connected')) ? true : undefined), 10_000, 'the simulated devices');
    await stack.api(app).pushBroadcast({ title: 'to the simulators' });
    await run;
    expect(lines.filter((l) => l.includes(' received ') && l.endsWith('to the simulators'))).toHaveLength(2);
  });

  it("revokes a device's credentials, which closes its connection with revoked", async () => {
    const device = await stack.device(app);
    const closed = new Promise<string | undefined>((resolve) => device.client.on('error', (e) => resolve(e.close?.reason)));
    const revoked = (await mps('device', 'revoke', device.id)) as { id: string; revokedAt: string };
    expect(revoked.id).toBe(device.id);
    expect(await closed).toBe('revoked');
    expect(await mps('device', 'revoke', device.id)).toEqual(revoked);
  });

  it('answers usage errors with exit code 2 and API errors with 1, naming the code (the built bin)', async () => {
    // Asynchronously: the API this talks to runs in this very process.
    const bin = join(ROOT, 'sdk/bin/mps.js');
    const run = (...args: string[]) =>
      promisify(execFile)(process.execPath, [bin, ...args, '--credentials', file]).then(
        () => ({ code: 0, stderr: '' }),
        (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
      );
    const usage = await run('push');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('give exactly one of --device, --user or --broadcast');
    const refused = await run('message', '0193e6f1-0000-7000-8000-000000000000');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('error 404 MESSAGE_NOT_FOUND');
  });
});
