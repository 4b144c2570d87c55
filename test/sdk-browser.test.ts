/**
 * The device SDK in a real browser: `@mps/sdk/browser` bundled by Vite from its sources, loaded by
 * a page in Debian's chromium, connected to a real gateway on the browser's own WebSocket. It
 * registers, receives and acks a push, keeps its identity in localStorage across a reload, is bound
 * to a user and gets that user's messages.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { build } from 'vite';
import type { CreatedApp } from '@mps/control-plane';
import { eventually, ROOT } from './support/services.js';
import { startBrowser, type TestBrowser } from './support/browser.js';
import { startTestStack, type TestStack } from './support/stack.js';

const PAGE = `<!doctype html><meta charset="utf-8"><title>sdk</title>
<script type="module">
  import { DeviceClient, WebStorageCredentialStore } from './sdk.js';
  window.shown = [];
  window.start = async (url, app) => {
    window.device = new DeviceClient({
      url, app, platform: 'web',
      credentials: new WebStorageCredentialStore('mps-device:' + app),
      onMessage: (m) => { window.shown.push({ id: m.id, title: m.title }); },
    });
    return window.device.connect();
  };
</script>`;

let stack: TestStack;
let browser: TestBrowser;
let server: Server;
let bundleDir: string;
let origin: string;
let app: CreatedApp;

beforeAll(async () => {
  stack = await startTestStack();
  app = await stack.createApp('browser');
  bundleDir = await mkdtemp(join(tmpdir(), 'mps-sdk-browser-'));
  await build({
    configFile: false,
    logLevel: 'warn',
    resolve: { conditions: ['source', 'browser'] },
    build: {
      outDir: bundleDir,
      emptyOutDir: true,
      lib: { entry: join(ROOT, 'sdk/src/browser.ts'), formats: ['es'], fileName: () => 'sdk.js' },
    },
  });
  const bundle = await readFile(join(bundleDir, 'sdk.js'));
  server = createServer((request, response) => {
    if (request.url === '/sdk.js') return response.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    if (request.url === '/') return response.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await startBrowser(join(ROOT, 'test', 'artifacts', 'sdk-browser'));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
  await rm(bundleDir, { recursive: true, force: true });
  await stack?.stop();
});

const shown = () => browser.page.evaluate(() => (globalThis as unknown as { shown: { id: string; title: string }[] }).shown);
const start = () =>
  browser.page.evaluate(([url, appId]) => (globalThis as unknown as { start(u: string, a: string): Promise<string> }).start(url, appId), [stack.gateway.url, app.app] as const);

it('registers, receives and acks, keeps its identity across a reload, and gets its user\'s messages', async () => {
  const { page } = browser;
  await page.goto(`${origin}/`);
  const deviceId = await start();
  expect(deviceId).toMatch(/^[0-9a-f-]{36}$/);
  const device = await stack.api(app).device(deviceId);
  expect(device).toMatchObject({ platform: 'web' });

  const api = stack.api(app);
  const first = await api.pushSimple({ target: { device: deviceId }, title: 'to the browser' });
  await eventually(async () => ((await shown()).some((m) => m.id === first.messageId) ? true : undefined), 10_000, 'the push shown in the page');
  await eventually(async () => ((await api.message(first.messageId)).targets[0]?.status === 'delivered' ? true : undefined), 10_000, 'the ack');

  // A reload is the same device (its id and secret are in localStorage), not a new registration.
  await page.reload();
  expect(await start()).toBe(deviceId);
  expect(await shown()).toEqual([]);

  const bindToken = await api.bindToken('browser-user');
  const bound = await page.evaluate((token) => (globalThis as unknown as { device: { bind(t: string): Promise<string> } }).device.bind(token), bindToken);
  expect(bound).toBe('browser-user');
  const toUser = await api.pushSimple({ target: { user: 'browser-user' }, title: 'to the user' });
  await eventually(async () => ((await shown()).some((m) => m.id === toUser.messageId) ? true : undefined), 10_000, "the user's push shown");
  expect((await shown()).map((m) => m.title)).toEqual(['to the user']);
  await browser.screenshot('sdk-page');
  expect(browser.problems).toEqual([]);
}, 60_000);
