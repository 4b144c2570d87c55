/**
 * The console's authentication through the HTTP API (inject): signing in and its failures, the
 * session cookie, CSRF, app membership, session expiry, the static files, and the signature path
 * left exactly as strict as it was.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, MasterKey, SignatureHeader } from '@mps/shared';
import { buildApp, KeyStore, NonceGuard, type AppDeps, type CreatedApp } from '@mps/control-plane';
import { OperatorStore, MAX_FAILED_SIGN_INS } from '../control-plane/src/operators.js';
import { signedHeaders, signedInject } from './support/api.js';
import { createTestDatabase, createTestNats, insertDevice, ROOT, type TestDatabase, type TestNats } from './support/services.js';

type App = Awaited<ReturnType<typeof buildApp>>;

const PASSWORD = 'correct horse battery';

describe('console authentication', () => {
  let database: TestDatabase;
  let nats: TestNats;
  let keys: KeyStore;
  let operators: OperatorStore;
  let api: App;
  let dir: string;
  let a: CreatedApp;
  let b: CreatedApp;
  let deps: AppDeps;

  beforeAll(async () => {
    database = await createTestDatabase();
    nats = await createTestNats();
    keys = new KeyStore(database.db, MasterKey.fromBase64(MasterKey.generate()), 0);
    operators = new OperatorStore(database.db);
    a = await keys.createApp('a');
    b = await keys.createApp('b');
    const ana = await operators.create('Ana@Example.com', PASSWORD);
    await operators.addMember(ana.id, a.app);
    const bo = await operators.create('bo@example.com', PASSWORD);
    await operators.addMember(bo.id, b.app);
    await operators.create('throttled@example.com', PASSWORD);
    await operators.create('off@example.com', PASSWORD);
    await operators.setDisabled('off@example.com', true);
    dir = await mkdtemp(join(tmpdir(), 'mps-console-files-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>mps</title><script type="module" src="/console/assets/index-abc.js"></script>');
    await writeFile(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
    deps = {
      db: database.db,
      nc: nats.nc,
      js: jetstream(nats.nc),
      subjects: nats.subjects,
      keys,
      nonces: await NonceGuard.open(nats.nc, nats.subjects),
      log: createLogger('control-plane', 'silent'),
      defaultTtlS: 3600,
      maxTtlS: 7 * 86_400,
      rateLimitPerS: 1000,
      console: { dir, sessionTtlS: 3600, secureCookie: true, signInsPerMinute: 1000 },
    };
    api = await buildApp(deps);
  });

  afterAll(async () => {
    await api?.close();
    await nats?.cleanup();
    await database?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const signIn = (email: string, password: string, headers: Record<string, string> = {}) =>
    api.inject({ method: 'POST', url: '/console/api/sign-in', headers: { 'content-type': 'application/json', ...headers }, payload: { email, password } });

  /** A signed-in operator: the cookie to send back and the CSRF token. */
  async function session(email = 'ana@example.com') {
    const response = await signIn(email, PASSWORD);
    expect(response.statusCode).toBe(200);
    const setCookie = String(response.headers['set-cookie']);
    const cookie = setCookie.split(';')[0] as string;
    const body = response.json() as { csrfToken: string; apps: { id: string }[]; operator: { email: string } };
    return { cookie, token: cookie.split('=')[1] as string, csrf: body.csrfToken, body, setCookie };
  }

  const as = (s: { cookie: string; csrf: string }, app: string | undefined, extra: Record<string, string> = {}) => ({
    cookie: s.cookie,
    'x-mps-csrf': s.csrf,
    ...(app !== undefined && { 'mps-app': app }),
    ...extra,
  });

  describe('signing in', () => {
    it('sets a Secure, HttpOnly, SameSite=Strict __Host- cookie and answers with the CSRF token and the apps', async () => {
      const s = await session('ANA@Example.com');
      expect(s.setCookie).toMatch(/^__Host-mps_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Strict; Secure$/);
      expect(s.body.operator.email).toBe('ana@example.com');
      expect(s.body.apps.map((x) => x.id)).toEqual([a.app]);
      expect(s.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(JSON.stringify(s.body)).not.toContain(s.token);
      // Only the hash of the token is stored.
      const stored = await database.db.query<{ token_hash: Buffer }>('SELECT token_hash FROM operator_sessions');
      expect(stored.rows.every((r) => !r.token_hash.toString('utf8').includes(s.token))).toBe(true);
      const me = await api.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: s.cookie } });
      expect(me.statusCode).toBe(200);
      expect(me.json()).toMatchObject({ operator: { email: 'ana@example.com' }, csrfToken: s.csrf });
      expect(me.headers['cache-control']).toBe('no-store');
    });

    it('answers SIGN_IN_FAILED alike for a wrong password, an unknown email and a disabled account', async () => {
      for (const [email, password] of [
        ['ana@example.com', 'wrong password!'],
        ['nobody@example.com', PASSWORD],
        ['off@example.com', PASSWORD],
      ] as const) {
        const response = await signIn(email, password);
        expect(response.statusCode).toBe(401);
        expect(response.json()).toEqual({ error: { code: 'SIGN_IN_FAILED', message: 'wrong email or password' } });
        expect(response.headers['set-cookie']).toBeUndefined();
      }
      await session(); // the failure above did not lock ana out
    });

    it('names the field at fault in bad input, and changes nothing', async () => {
      const sessionsBefore = await database.db.query('SELECT count(*)::int AS n FROM operator_sessions');
      const cases: [unknown, string][] = [
        [{ email: 'not-an-email', password: 'x' }, 'email'],
        [{ email: 'ana@example.com' }, 'password'],
        [{ email: 'ana@example.com', password: '' }, 'password'],
        [{ email: 'ana@example.com', password: PASSWORD, admin: true }, 'admin'],
      ];
      for (const [payload, field] of cases) {
        const response = await api.inject({ method: 'POST', url: '/console/api/sign-in', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) });
        expect(response.statusCode).toBe(400);
        expect(response.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED', field } });
      }
      expect((await database.db.query('SELECT count(*)::int AS n FROM operator_sessions')).rows).toEqual(sessionsBefore.rows);
    });

    it(`throttles an account after ${MAX_FAILED_SIGN_INS} failures in a row, even with the right password`, async () => {
      for (let i = 0; i < MAX_FAILED_SIGN_INS; i++) expect((await signIn('throttled@example.com', 'wrong password!')).statusCode).toBe(401);
      const refused = await signIn('throttled@example.com', PASSWORD);
      expect(refused.statusCode).toBe(429);
      expect(refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(250);
      // A new password (operator-cli password) lifts it.
      await operators.setPassword('throttled@example.com', PASSWORD);
      expect((await signIn('throttled@example.com', PASSWORD)).statusCode).toBe(200);
    });

    it('limits sign-in attempts per address', async () => {
      const strict = await buildApp({ ...deps, console: { ...deps.console, signInsPerMinute: 2 } });
      try {
        const attempt = () =>
          strict.inject({ method: 'POST', url: '/console/api/sign-in', headers: { 'content-type': 'application/json' }, payload: { email: 'x@example.com', password: 'x' } });
        expect((await attempt()).statusCode).toBe(401);
        expect((await attempt()).statusCode).toBe(401);
        const third = await attempt();
        expect(third.statusCode).toBe(429);
        expect(third.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
      } finally {
        await strict.close();
      }
    });

    it('refuses signing in from a page of another site', async () => {
      const response = await signIn('ana@example.com', PASSWORD, { origin: 'https://evil.example' });
      expect(response.statusCode).toBe(403);
      expect(response.json()).toMatchObject({ error: { code: 'CSRF_FAILED' } });
      expect(response.headers['set-cookie']).toBeUndefined();
    });
  });

  describe('the /v1 API under a session', () => {
    it('works for an app the operator is a member of, with the CSRF token on changes', async () => {
      const s = await session();
      const put = await api.inject({ method: 'PUT', url: '/v1/templates/welcome', headers: { ...as(s, a.app), 'content-type': 'application/json' }, payload: { title: 'Hi {{name}}' } });
      expect(put.statusCode).toBe(201);
      expect(put.headers['cache-control']).toBe('no-store');
      // It is app a's template, as its API key sees it; app b has none.
      const viaKey = await signedInject(api, 'GET', '/v1/templates', undefined, { keyId: a.keyId, secret: a.secret });
      expect(viaKey.body).toMatchObject({ templates: [{ name: 'welcome', placeholders: ['name'] }] });
      expect((await signedInject(api, 'GET', '/v1/templates', undefined, { keyId: b.keyId, secret: b.secret })).body).toEqual({ templates: [] });
    });

    it('refuses a change without the CSRF token, with a wrong one, or from another origin', async () => {
      const s = await session();
      const put = (headers: Record<string, string>) =>
        api.inject({ method: 'PUT', url: '/v1/templates/csrf', headers: { 'content-type': 'application/json', cookie: s.cookie, 'mps-app': a.app, ...headers }, payload: { title: 'x' } });
      const refused: Record<string, string>[] = [{}, { 'x-mps-csrf': 'A'.repeat(43) }, { 'x-mps-csrf': s.csrf, origin: 'https://evil.example' }];
      for (const headers of refused) {
        const response = await put(headers);
        expect(response.statusCode).toBe(403);
        expect(response.json()).toMatchObject({ error: { code: 'CSRF_FAILED' } });
      }
      const other = await session('bo@example.com');
      expect((await put({ 'x-mps-csrf': other.csrf })).statusCode).toBe(403); // another session's token
      expect((await signedInject(api, 'GET', '/v1/templates/csrf', undefined, { keyId: a.keyId, secret: a.secret })).status).toBe(404);
      expect((await put({ 'x-mps-csrf': s.csrf, origin: 'http://localhost:80' })).statusCode).toBe(201); // inject's host
    });

    it("answers APP_NOT_ALLOWED for another operator's app, an unknown app, or none named", async () => {
      const s = await session();
      for (const app of [b.app, 'app_doesnotexist000', 'not an app id', undefined]) {
        const response = await api.inject({ method: 'GET', url: '/v1/templates', headers: as(s, app) });
        expect(response.statusCode).toBe(403);
        expect(response.json()).toMatchObject({ error: { code: 'APP_NOT_ALLOWED' } });
      }
      const device = await insertDevice(database.db, b.app);
      const push = await api.inject({
        method: 'POST',
        url: '/v1/push/simple',
        headers: { ...as(s, b.app), 'content-type': 'application/json' },
        payload: { target: { device }, title: 'not yours' },
      });
      expect(push.statusCode).toBe(403);
      expect((await database.db.query('SELECT 1 FROM messages WHERE app_id = $1', [b.app])).rowCount).toBe(0);
    });

    it('names the field of a schema violation', async () => {
      const s = await session();
      const post = (url: string, payload: unknown) =>
        api.inject({ method: 'POST', url, headers: { ...as(s, a.app), 'content-type': 'application/json' }, payload: JSON.stringify(payload) });
      const cases: [string, unknown, string][] = [
        ['/v1/push/simple', { target: { device: 'nope' }, title: 'x' }, 'target.device'],
        ['/v1/push/simple', { title: 'x' }, 'target'],
        ['/v1/push/simple', { target: { user: 'u' }, title: 'x', ttl: '60' }, 'ttl'],
        ['/v1/push/multiple', { targets: [{ user: 'u' }, { user: 'v', colour: 'red' }], title: 'x' }, 'targets.1.colour'],
      ];
      for (const [url, payload, field] of cases) {
        const response = await post(url, payload);
        expect(response.statusCode).toBe(400);
        expect(response.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED', field } });
      }
    });

    it('ends with the session: expired or signed out is AUTH_NO_SESSION', async () => {
      const s = await session();
      expect((await api.inject({ method: 'GET', url: '/v1/keys', headers: as(s, a.app) })).statusCode).toBe(200);
      await database.db.query(`UPDATE operator_sessions SET expires_at = now() - interval '1 second'`);
      for (const url of ['/v1/keys', '/console/api/session', '/console/api/apps']) {
        const response = await api.inject({ method: 'GET', url, headers: as(s, a.app) });
        expect(response.statusCode).toBe(401);
        expect(response.json()).toMatchObject({ error: { code: 'AUTH_NO_SESSION' } });
      }

      const t = await session();
      const noToken = await api.inject({ method: 'POST', url: '/console/api/sign-out', headers: { cookie: t.cookie } });
      expect(noToken.statusCode).toBe(403);
      const out = await api.inject({ method: 'POST', url: '/console/api/sign-out', headers: as(t, undefined) });
      expect(out.statusCode).toBe(204);
      expect(out.headers['set-cookie']).toBe('__Host-mps_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure');
      expect((await api.inject({ method: 'GET', url: '/v1/keys', headers: as(t, a.app) })).json()).toMatchObject({ error: { code: 'AUTH_NO_SESSION' } });
      const garbage = await api.inject({ method: 'GET', url: '/v1/keys', headers: { cookie: '__Host-mps_session=nonsense', 'mps-app': a.app } });
      expect(garbage.json()).toMatchObject({ error: { code: 'AUTH_NO_SESSION' } });
    });
  });

  describe('the signature path, unchanged', () => {
    it('does not let a session cookie stand in for a missing or wrong signature', async () => {
      const s = await session();
      const url = '/v1/keys';
      const headers = signedHeaders('GET', url, '', { keyId: a.keyId, secret: b.secret });
      const wrong = await api.inject({ method: 'GET', url, headers: { ...headers, ...as(s, a.app) } });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json()).toMatchObject({ error: { code: 'AUTH_BAD_SIGNATURE' } });
      for (const name of Object.values(SignatureHeader)) {
        const partial = signedHeaders('GET', url, '', { keyId: a.keyId, secret: a.secret, override: { [name]: undefined } });
        const response = await api.inject({ method: 'GET', url, headers: { ...partial, ...as(s, a.app) } });
        expect(response.statusCode).toBe(401);
        expect(response.json()).toMatchObject({ error: { code: 'AUTH_MISSING_HEADER' } });
      }
      const bare = await api.inject({ method: 'GET', url });
      expect(bare.json()).toEqual({ error: { code: 'AUTH_MISSING_HEADER', message: 'missing header x-mps-key' } });
      const signed = await signedInject(api, 'GET', url, undefined, { keyId: a.keyId, secret: a.secret });
      expect(signed.status).toBe(200);
    });
  });

  describe('apps', () => {
    it('creates an app with its first key (the secret shown once), and makes the operator its member', async () => {
      const s = await session();
      const bad = await api.inject({ method: 'POST', url: '/console/api/apps', headers: { ...as(s, undefined), 'content-type': 'application/json' }, payload: { name: '   ' } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED', field: 'name' } });
      const created = await api.inject({ method: 'POST', url: '/console/api/apps', headers: { ...as(s, undefined), 'content-type': 'application/json' }, payload: { name: ' shop ' } });
      expect(created.statusCode).toBe(201);
      const body = created.json() as { app: { id: string; name: string }; key: { id: string; secret: string } };
      expect(body.app.name).toBe('shop');
      const listed = await api.inject({ method: 'GET', url: '/v1/keys', headers: as(s, body.app.id) });
      expect(listed.json()).toEqual({ keys: [expect.objectContaining({ id: body.key.id, status: 'active' })] });
      expect(listed.body).not.toContain(body.key.secret);
      const other = await session('bo@example.com');
      expect((await api.inject({ method: 'GET', url: '/v1/keys', headers: as(other, body.app.id) })).statusCode).toBe(403);
      const apps = await api.inject({ method: 'GET', url: '/console/api/apps', headers: { cookie: s.cookie } });
      expect((apps.json() as { apps: { id: string }[] }).apps.map((x) => x.id).sort()).toEqual([a.app, body.app.id].sort());
    });

    it('needs a session and the CSRF token to create one', async () => {
      const none = await api.inject({ method: 'POST', url: '/console/api/apps', headers: { 'content-type': 'application/json' }, payload: { name: 'x' } });
      expect(none.json()).toMatchObject({ error: { code: 'AUTH_NO_SESSION' } });
      const s = await session();
      const noCsrf = await api.inject({ method: 'POST', url: '/console/api/apps', headers: { cookie: s.cookie, 'content-type': 'application/json' }, payload: { name: 'x' } });
      expect(noCsrf.json()).toMatchObject({ error: { code: 'CSRF_FAILED' } });
    });
  });

  describe('devices, as the console shows them', () => {
    it("tells whether a device is connected, and lists its latest messages", async () => {
      const s = await session();
      const device = await insertDevice(database.db, a.app);
      const pushed = await signedInject(api, 'POST', '/v1/push/simple', { target: { device }, title: 'Latest' }, { keyId: a.keyId, secret: a.secret });
      expect(pushed.status).toBe(202);
      const found = await api.inject({ method: 'GET', url: `/v1/devices/${device}`, headers: as(s, a.app) });
      expect(found.json()).toMatchObject({ id: device, online: false }); // no gateway holds it
      const messages = await api.inject({ method: 'GET', url: `/v1/devices/${device}/messages`, headers: as(s, a.app) });
      expect(messages.json()).toEqual({
        messages: [expect.objectContaining({ id: pushed.body?.messageId, title: 'Latest', status: 'pending', mode: 'simple', channel: null })],
      });
      const other = await api.inject({ method: 'GET', url: `/v1/devices/${device}/messages`, headers: as(await session('bo@example.com'), b.app) });
      expect(other.json()).toMatchObject({ error: { code: 'DEVICE_NOT_FOUND' } });
    });
  });

  // Each call starts a process from the sources (tsx): seconds each on a busy machine.
  describe('the operator command line', { timeout: 120_000 }, () => {
    const cli = (args: string[], env: Record<string, string>, stdin = '') =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'control-plane/src/operator-cli.ts', ...args], {
          cwd: ROOT,
          env: { ...process.env, DATABASE_URL: database.url, ...env },
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => resolve({ code, out }));
        child.stdin.end(stdin);
      });

    it('creates an operator with a password from stdin, member of the apps named', async () => {
      const created = await cli(['create', 'Cli@Example.com', '--app', a.app, '--password-stdin'], {}, 'a password from stdin\n');
      expect(created).toEqual({ code: 0, out: 'created operator cli@example.com\n' });
      const signedIn = await signIn('cli@example.com', 'a password from stdin');
      expect(signedIn.statusCode).toBe(200);
      expect((signedIn.json() as { apps: { id: string }[] }).apps.map((x) => x.id)).toEqual([a.app]);
      expect(await cli(['create', 'cli@example.com', '--password-stdin'], {}, 'another password!')).toMatchObject({ code: 2, out: expect.stringContaining('OPERATOR_EXISTS') });
      expect(await cli(['create', 'short@example.com', '--password-stdin'], {}, 'short')).toMatchObject({ code: 2, out: expect.stringContaining('WEAK_PASSWORD') });
      expect(await cli(['add-app', 'cli@example.com', 'app_nope'], {})).toMatchObject({ code: 2, out: expect.stringContaining('APP_NOT_FOUND') });
      expect(await cli(['frobnicate'], {})).toMatchObject({ code: 2, out: expect.stringContaining('usage:') });
    });

    it("bootstraps make run's operator: a generated password kept in DATA_DIR, member of the demo app", async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'mps-bootstrap-'));
      try {
        await writeFile(join(dataDir, 'demo.json'), JSON.stringify({ app: b.app }));
        const first = await cli(['bootstrap'], { DATA_DIR: dataDir, CONSOLE_ADMIN_EMAIL: 'demo@localhost' });
        expect(first.code).toBe(0);
        expect(first.out).toContain('demo@localhost');
        const saved = JSON.parse(await readFile(join(dataDir, 'console-admin.json'), 'utf8')) as { email: string; password: string };
        expect(first.out).not.toContain(saved.password);
        const signedIn = await signIn(saved.email, saved.password);
        expect((signedIn.json() as { apps: { id: string }[] }).apps.map((x) => x.id)).toEqual([b.app]);
        // Again: nothing new, the same password still works.
        expect((await cli(['bootstrap'], { DATA_DIR: dataDir, CONSOLE_ADMIN_EMAIL: 'demo@localhost' })).code).toBe(0);
        expect((await signIn(saved.email, saved.password)).statusCode).toBe(200);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });

  describe('the static files', () => {
    it('serves index.html with a strict Content-Security-Policy, and hashed assets as immutable', async () => {
      const index = await api.inject({ method: 'GET', url: '/console/' });
      expect(index.statusCode).toBe(200);
      expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(index.headers['content-security-policy']).toContain("default-src 'none'");
      expect(index.headers['content-security-policy']).toContain("script-src 'self'");
      expect(index.headers['content-security-policy']).not.toContain('unsafe');
      expect(index.headers['x-frame-options']).toBe('DENY');
      const script = await api.inject({ method: 'GET', url: '/console/assets/index-abc.js' });
      expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(script.headers['cache-control']).toContain('immutable');
      expect((await api.inject({ method: 'GET', url: '/console' })).headers.location).toBe('/console/');
      expect((await api.inject({ method: 'GET', url: '/console/assets/../index.html' })).statusCode).toBeLessThan(500);
      expect((await api.inject({ method: 'GET', url: '/console/nope.js' })).json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
      expect((await api.inject({ method: 'GET', url: '/console/api/nope' })).statusCode).toBe(404);
    });

    it('says how to build the console when it is not built', async () => {
      const unbuilt = await buildApp({ ...deps, console: { ...deps.console, dir: join(dir, 'missing') } });
      try {
        const response = await unbuilt.inject({ method: 'GET', url: '/console/' });
        expect(response.statusCode).toBe(503);
        expect(response.json()).toMatchObject({ error: { code: 'UNAVAILABLE', message: expect.stringContaining('npm run build') } });
      } finally {
        await unbuilt.close();
      }
    });
  });
});
