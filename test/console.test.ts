/**
 * The web console in a real browser (Debian's chromium, headless, through playwright-core), against
 * the real service: control plane (serving the console it just built), gateway, a device on the
 * SDK, PostgreSQL, NATS, and analytics on embedded chDB. An operator signs in, creates a template,
 * pushes to the connected device, sees it delivered and in the report. Each page's screenshot is
 * saved to test/artifacts/console/.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@mps/shared';
import { ChdbStore, serveReports, startIngest, type Ingest } from '@mps/analytics';
import type { CreatedApp } from '@mps/control-plane';
import type { PushClient } from '@mps/sdk';
import { OperatorStore } from '../control-plane/src/operators.js';
import { buildConsole, startBrowser, type TestBrowser } from './support/browser.js';
import { eventually } from './support/services.js';
import { startTestStack, type TestDevice, type TestStack } from './support/stack.js';

const EMAIL = 'ops@example.com';
const PASSWORD = 'a long enough password';

describe('web console in chromium', () => {
  let built: Awaited<ReturnType<typeof buildConsole>>;
  let stack: TestStack;
  let app: CreatedApp;
  let api: PushClient;
  let device: TestDevice;
  let chdbDir: string;
  let store: ChdbStore;
  let ingest: Ingest;
  let reports: { unsubscribe(): void };
  let browser: TestBrowser;
  let messageId = '';
  const shots: string[] = [];

  const consoleUrl = (hash = '') => `${stack.apiUrl}/console/${hash}`;
  const shot = async (name: string) => shots.push(await browser.screenshot(name));
  const text = (selector: string) => browser.page.locator(selector).first().innerText();
  const open = async (page: string, query = '') => {
    await browser.page.goto(consoleUrl(`#/a/${app.app}/${page}${query}`));
    await browser.page.locator('main.content h1').first().waitFor();
  };

  beforeAll(async () => {
    const started = Date.now();
    built = await buildConsole();
    stack = await startTestStack({}, { console: { dir: built.dir, secureCookie: true, sessionTtlS: 3600, signInsPerMinute: 100 } });
    const { nc, subjects } = stack.nats;
    chdbDir = await mkdtemp(join(tmpdir(), 'mps-console-chdb-'));
    store = new ChdbStore(chdbDir);
    await store.init();
    const log = createLogger('analytics', 'silent');
    ingest = await startIngest({ nc, js: jetstream(nc), store, subjects, log, batchSize: 5000, flushMs: 1000 });
    reports = serveReports({ nc, store, subjects, log });

    app = await stack.createApp('shop');
    api = stack.api(app);
    const operators = new OperatorStore(stack.database.db);
    const operator = await operators.create(EMAIL, PASSWORD);
    await operators.addMember(operator.id, app.app);
    // An app of someone else's: the operator must not see it.
    await stack.createApp('not-theirs');
    device = await stack.device(app, { platform: 'android', appVersion: '2.3.0' });
    await device.client.bind(await api.bindToken('ana'));
    browser = await startBrowser();
    console.log(`console test set-up: ${Date.now() - started} ms`);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    reports?.unsubscribe();
    await ingest?.stop();
    await stack?.stop();
    await store?.close();
    if (chdbDir) await rm(chdbDir, { recursive: true, force: true });
    await built?.remove();
    if (shots.length > 0) console.log(`screenshots:\n${shots.join('\n')}`);
  });

  it('signs in, after field-level errors for bad input and a wrong password', async () => {
    const { page } = browser;
    await page.goto(consoleUrl());
    await page.locator('input[name=email]').waitFor();
    await shot('01-sign-in');
    await page.click('button[type=submit]');
    expect(await text('[data-error-for=email]')).toContain('email address');
    expect(await text('[data-error-for=password]')).toContain('missing');
    await page.fill('input[name=email]', EMAIL);
    await page.fill('input[name=password]', 'not the password');
    await page.click('button[type=submit]');
    await page.locator('[data-error-for=""]').waitFor();
    expect(await text('[data-error-for=""]')).toContain('wrong email or password');
    await shot('02-sign-in-failed');

    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.locator('h1:has-text("Apps")').waitFor();
    const cookies = await browser.context.cookies();
    expect(cookies).toEqual([expect.objectContaining({ name: '__Host-mps_session', httpOnly: true, secure: true, sameSite: 'Strict', path: '/' })]);
    expect(await page.evaluate('document.cookie')).toBe(''); // HttpOnly: scripts never see it
    expect(await page.locator('[data-table=apps] tbody tr').count()).toBe(1); // only the app they are a member of
    await shot('03-apps');
    // The Content-Security-Policy is in force: a script injected into the page does not run.
    expect(await page.evaluate(`(() => { const s = document.createElement('script'); s.textContent = 'window.injected = true'; document.body.append(s); return window.injected === true; })()`)).toBe(false);
    await expect.poll(() => browser.problems.some((p) => p.includes('Content Security Policy'))).toBe(true);
    browser.problems.length = 0;
  });

  it('creates an app, showing its key secret once', async () => {
    const { page } = browser;
    await page.click('button:has-text("Create app")');
    expect(await text('[data-error-for=name]')).toContain('1 to 64');
    await page.fill('input[name=name]', 'second app');
    await page.click('button:has-text("Create app")');
    const secret = await text('[data-secret]');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await shot('04-app-created');
    await page.click('button:has-text("I have stored it")');
    await expect.poll(() => page.locator('[data-table=apps] tbody tr').count()).toBe(2);
    expect(await page.locator('body').innerText()).not.toContain(secret);
  });

  it('creates, then deletes, an API key', async () => {
    const { page } = browser;
    await open('keys');
    await page.locator('[data-table=keys] tbody tr').first().waitFor();
    await page.click('button:has-text("Create key")');
    const secret = await text('[data-secret]');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stack.keys.list(app.app)).filter((k) => k.status === 'active')).toHaveLength(2);
    await shot('05-keys');
    await page.click('button:has-text("I have stored it")');
    const created = page.locator('[data-table=keys] tbody tr').nth(1);
    await created.locator('button:has-text("Delete")').click();
    await created.locator('button:has-text("Delete it for good")').click();
    await expect.poll(() => page.locator('[data-table=keys] tbody tr').count()).toBe(1);
    expect(await stack.keys.list(app.app)).toEqual([expect.objectContaining({ id: app.keyId, status: 'active' })]);
  });

  it('creates a template, previewing its placeholders', async () => {
    const { page } = browser;
    await open('templates');
    await page.click('button:has-text("New template")');
    await page.fill('input[name=name]', 'no spaces allowed');
    await page.click('button:has-text("Create template")');
    expect(await text('[data-error-for=name]')).toContain('A-Z');
    expect(await text('[data-error-for=title]')).toContain('title or a body');

    await page.fill('input[name=name]', 'welcome');
    await page.fill('input[name=title]', 'Hello {{name}}');
    await page.fill('textarea[name=body]', 'Your order {{ order }} has shipped');
    await page.fill('input[name="sample.name"]', 'Ana');
    expect(await text('[data-preview-title]')).toBe('Hello Ana');
    expect(await page.locator('[data-preview-body] mark').innerText()).toBe('{{ order }}'); // no sample value yet
    await shot('06-template-editor');
    await page.click('button:has-text("Create template")');
    await page.locator('[data-template=welcome]').waitFor();
    expect(await api.template('welcome')).toMatchObject({ title: 'Hello {{name}}', placeholders: ['name', 'order'] });
    await shot('07-templates');
  });

  it('pushes the template to the connected device and sees it delivered', async () => {
    const { page } = browser;
    await open('push');
    await page.click('[data-kind=template]');
    await page.selectOption('select[name=template]', 'welcome');
    await page.fill('input[name="values.name"]', 'Ana');
    await page.fill('input[name="values.order"]', '7421');
    expect(await text('[data-preview-title]')).toBe('Hello Ana');
    expect(await text('[data-preview-body]')).toBe('Your order 7421 has shipped');

    // Passes the form's own checks; the server answers that no such device is in this app.
    await page.fill('input[name=target]', randomUUID());
    await page.click('button:has-text("Send")');
    await page.locator('[data-error-for=target]').waitFor();
    expect(await text('[data-error-for=target]')).toContain('DEVICE_NOT_FOUND');
    await shot('08-push-error');

    await page.fill('input[name=target]', device.id);
    await page.click('button:has-text("Send")');
    await page.locator('[data-message-id]').waitFor();
    messageId = (await page.locator('[data-message-id]').getAttribute('data-message-id')) as string;
    const [shown] = await device.waitFor(1);
    expect(shown).toMatchObject({ id: messageId, title: 'Hello Ana', body: 'Your order 7421 has shipped' });
    device.client.track(messageId, 'arrived');
    device.client.track(messageId, 'opened');
    await expect.poll(() => text('[data-count=delivered] strong'), { timeout: 15_000 }).toBe('1');
    expect(await text('[data-count=pending] strong')).toBe('0');
    await shot('09-push-delivered');
  });

  it("shows the message's funnel and per-channel results", async () => {
    const { page } = browser;
    await page.click('[data-message-id]');
    await page.locator('[data-step=opened]').waitFor({ timeout: 15_000 });
    await expect.poll(() => text('[data-step=opened] .funnel-count'), { timeout: 20_000 }).toBe('1');
    expect(await text('[data-step=delivered] .funnel-count')).toBe('1');
    expect(await text('[data-channel=socket] [data-kind=delivered]')).toBe('1');
    await shot('10-message');
  });

  it('shows the push in the report', async () => {
    const { page } = browser;
    await open('reports');
    // The page refreshes every 10 s; "Show" asks at once.
    await expect
      .poll(
        async () => {
          await page.click('button:has-text("Show")');
          await page.waitForTimeout(500);
          return (await page.locator('[data-total=opened] strong').count()) > 0 ? text('[data-total=opened] strong') : '';
        },
        { timeout: 30_000, interval: 1000 },
      )
      .toBe('1');
    expect(await text('[data-total=delivered] strong')).toBe('1');
    expect(await page.locator('[data-chart=Events] circle').count()).toBeGreaterThan(0);
    await shot('11-reports');
    // Filtered to iOS, the Android device's push is not there.
    await page.fill('input[name=platform]', 'ios');
    await page.click('button:has-text("Show")');
    await expect.poll(() => text('[data-total=delivered] strong')).toBe('0');
  });

  it('finds the device and its user: online, bound, the latest messages', async () => {
    const { page } = browser;
    await open('devices');
    await page.fill('input[name=q]', device.id);
    await page.click('button:has-text("Search")');
    await page.locator('[data-online]').waitFor();
    expect(await page.locator('[data-online]').getAttribute('data-online')).toBe('true');
    expect(await text('[data-user]')).toBe('ana');
    await page.locator(`[data-table=device-messages] [data-message="${messageId}"]`).waitFor();
    await shot('12-device');
    await page.click('[data-user] a');
    await page.locator('[data-table=user-devices]').waitFor();
    expect(await text('[data-table=user-devices]')).toContain(device.id);
    await shot('13-user');
  });

  it('sends a multiple push from a CSV file and a broadcast with a condition', async () => {
    const { page } = browser;
    await open('push');
    await page.click('[data-kind=multiple]');
    await page.selectOption('select[name=template]', 'welcome');
    await page.setInputFiles('input[name=targets]', { name: 'targets.csv', mimeType: 'text/csv', buffer: Buffer.from('device,name\nnot-a-uuid,Bo\n') });
    await page.click('button:has-text("Send")');
    expect(await text('[data-error-for=targets]')).toContain('line 2');
    await page.setInputFiles('input[name=targets]', {
      name: 'targets.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`device,name,order\n${device.id},"Bo, Jr.",7422\n`),
    });
    await page.locator('[data-csv-summary]').waitFor();
    expect(await text('[data-preview-title]')).toBe('Hello Bo, Jr.');
    await shot('14-push-multiple');
    await page.click('button:has-text("Send")');
    await page.locator('[data-task-id]').waitFor();
    expect((await device.waitFor(2))[1]).toMatchObject({ title: 'Hello Bo, Jr.', body: 'Your order 7422 has shipped' });

    await page.click('[data-kind=broadcast]');
    await page.click('button:has-text("Add a condition")');
    await page.selectOption('[data-condition-row="0"] select[aria-label=kind]', 'fact');
    await page.selectOption('[data-condition-row="0"] select[aria-label=fact]', 'platform');
    await page.fill('[data-condition-row="0"] input[aria-label=value]', 'android');
    await page.click('button:has-text("How many devices?")');
    await expect.poll(() => text('[data-reach]')).toBe('1 device matches now');
    await page.fill('input[name=title]', 'Flash sale');
    await page.fill('textarea[name=body]', 'Android only');
    await shot('15-push-broadcast');
    await page.click('button:has-text("Send")');
    await page.locator('[data-message-id]').waitFor();
    expect((await device.waitFor(3))[2]).toMatchObject({ title: 'Flash sale' });
    // A broadcast's live status is what the devices reported, through analytics.
    await expect.poll(() => text('[data-count=delivered] strong'), { timeout: 20_000 }).toBe('1');
    expect(await text('[data-count=targeted] strong')).toBe('1');
  });

  it('saves channel credentials, with the server naming the field at fault', async () => {
    const { page } = browser;
    await open('channels');
    await page.click('[data-edit=huawei]');
    await page.fill('[data-vendor-form=huawei] input[name=appId]', 'abc');
    await page.click('[data-vendor-form=huawei] button[type=submit]');
    expect(await text('[data-vendor-form=huawei] [data-error-for=appId]')).toContain('numeric');
    expect(await text('[data-vendor-form=huawei] [data-error-for=clientSecret]')).toContain('missing');

    await page.click('[data-edit=apns]');
    const apns = '[data-vendor-form=apns]';
    await page.fill(`${apns} input[name=bundleId]`, 'com.example.shop');
    await page.fill(`${apns} input[name=keyId]`, 'ABC123DEFG');
    await page.fill(`${apns} input[name=teamId]`, 'DEF123GHIJ');
    await page.fill(`${apns} textarea[name=key]`, '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----');
    await page.click(`${apns} button[type=submit]`);
    await page.locator(`${apns} [data-error-for=key]`).waitFor();
    expect(await text(`${apns} [data-error-for=key]`)).toContain('private key');
    await shot('16-channel-error');

    await page.click('[data-edit=xiaomi]');
    await page.fill('[data-vendor-form=xiaomi] input[name=appSecret]', 'xiaomi-secret-123');
    await page.fill('[data-vendor-form=xiaomi] input[name=packageName]', 'com.example.shop');
    await page.click('[data-vendor-form=xiaomi] button[type=submit]');
    await expect.poll(() => text('[data-channel=xiaomi]')).toContain('com.example.shop');
    expect(await page.locator('body').innerText()).not.toContain('xiaomi-secret-123');
    expect((await api.channels()).channels.map((c) => c.vendor)).toEqual(['xiaomi']);
    await shot('17-channels');
  });

  it('lists messages with filters, and revokes one', async () => {
    const { page } = browser;
    await open('messages');
    await page.locator(`[data-message="${messageId}"]`).waitFor();
    expect(await page.locator('[data-table=messages] tbody tr').count()).toBe(3);
    await page.selectOption('select[name=mode]', 'broadcast');
    await page.click('button:has-text("Filter")');
    await expect.poll(() => page.locator('[data-table=messages] tbody tr').count()).toBe(1);
    await shot('18-messages');
    await page.selectOption('select[name=mode]', '');
    await page.click('button:has-text("Filter")');
    await page.click(`[data-message="${messageId}"] a`);
    await page.click('button:has-text("Revoke")');
    await page.click('button:has-text("Revoke: stop delivery")');
    await expect.poll(() => text('[data-revoked]')).not.toBe('no');
    expect((await api.message(messageId)).revokedAt).not.toBeNull();
    await shot('19-message-revoked');
  });

  it('goes back to signing in when the session expires', async () => {
    const { page } = browser;
    await stack.database.db.query(`UPDATE operator_sessions SET expires_at = now() - interval '1 second'`);
    await page.click('nav a:has-text("Templates")');
    await page.locator('input[name=email]').waitFor();
    await page.fill('input[name=email]', EMAIL);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.locator('[data-template=welcome]').waitFor(); // back where the operator was
  });

  it('signs out, and the session is gone', async () => {
    const { page } = browser;
    await page.click('button:has-text("Sign out")');
    await page.locator('input[name=email]').waitFor();
    expect(await browser.context.cookies()).toEqual([]);
    expect((await stack.database.db.query('SELECT 1 FROM operator_sessions WHERE expires_at > now()')).rowCount).toBe(0);
    expect(browser.problems).toEqual([]);
  });
});
