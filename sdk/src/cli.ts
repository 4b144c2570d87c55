/**
 * mps: the command line for business servers and operators. `mps help` lists the commands.
 * Credentials: MPS_API_URL, MPS_KEY_ID and MPS_KEY_SECRET, or --credentials FILE (default
 * ./data/demo.json, written by `make run`). --json prints machine-readable output.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DeviceClient, MemoryCredentialStore, type Platform } from './index.js';
import { ApiRequestError, PushClient, type Condition, type Schedule, type TemplatePush } from './server/client.js';

const USAGE = `usage: mps COMMAND [options]
  push (--device ID | --user ID | --broadcast) [--title T] [--body B] [--payload JSON] [--ttl SECONDS]
       [--silent] [--template NAME --vars k=v,k=v] [--tags-and a,b | --tags-or a,b] [--condition JSON]
       [--business-id ID] [--at ISO-TIME | --local-time YYYY-MM-DDTHH:MM]
  message ID                     status and per-device results of a message
  messages [--limit N]           the newest messages
  revoke ID                      withdraw a message
  keys list | create [--kind hmac|rsa|ed25519 --public-key FILE] | disable ID | enable ID | delete ID
  templates list | get NAME | put NAME [--title T] [--body B] | delete NAME
  report ID                      a message's delivery funnel (status counts)
  device simulate [--count N] [--seconds S] [--platform P]
                                 connects N devices and prints what they receive
  device revoke ID               revoke a device's credentials and close its connections
options: --credentials FILE (default ./data/demo.json) or MPS_API_URL, MPS_KEY_ID, MPS_KEY_SECRET;
         --json for machine-readable output`;

class UsageError extends Error {}

interface Credentials {
  apiUrl: string;
  keyId: string;
  secret: string;
  app?: string;
  gatewayUrl?: string;
}

function credentialsFrom(file: string | undefined): Credentials {
  const env = process.env;
  if (file === undefined && env.MPS_KEY_ID && env.MPS_KEY_SECRET) {
    return { apiUrl: env.MPS_API_URL ?? 'http://127.0.0.1:8080', keyId: env.MPS_KEY_ID, secret: env.MPS_KEY_SECRET, ...(env.MPS_APP && { app: env.MPS_APP }), ...(env.MPS_GATEWAY_URL && { gatewayUrl: env.MPS_GATEWAY_URL }) };
  }
  const path = file ?? './data/demo.json';
  if (!existsSync(path)) throw new UsageError('no credentials: set MPS_KEY_ID and MPS_KEY_SECRET, or pass --credentials FILE');
  const saved = JSON.parse(readFileSync(path, 'utf8')) as Credentials;
  return { ...saved, apiUrl: env.MPS_API_URL ?? saved.apiUrl };
}

const list = (value: string | undefined) => (value === undefined ? [] : value.split(',').map((v) => v.trim()).filter((v) => v !== ''));

function vars(value: string | undefined): Record<string, string> {
  return Object.fromEntries(
    list(value).map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UsageError(`--vars takes k=v pairs, got "${pair}"`);
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    }),
  );
}

function json(value: string, flag: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw new UsageError(`${flag} must be JSON`);
  }
}

type Values = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      device: { type: 'string' },
      user: { type: 'string' },
      broadcast: { type: 'boolean' },
      title: { type: 'string' },
      body: { type: 'string' },
      payload: { type: 'string' },
      ttl: { type: 'string' },
      silent: { type: 'boolean' },
      template: { type: 'string' },
      vars: { type: 'string' },
      'tags-and': { type: 'string' },
      'tags-or': { type: 'string' },
      condition: { type: 'string' },
      'business-id': { type: 'string' },
      at: { type: 'string' },
      'local-time': { type: 'string' },
      limit: { type: 'string' },
      kind: { type: 'string' },
      'public-key': { type: 'string' },
      count: { type: 'string' },
      seconds: { type: 'string' },
      platform: { type: 'string' },
      credentials: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function conditionOf(values: Values): Condition | undefined {
  const and = list(values['tags-and']);
  const or = list(values['tags-or']);
  if (and.length > 0 && or.length > 0) throw new UsageError('give --tags-and or --tags-or, not both');
  if (values.condition !== undefined) return json(values.condition, '--condition') as Condition;
  if (and.length > 0) return { and: and.map((tag) => ({ tag })) };
  if (or.length > 0) return { or: or.map((tag) => ({ tag })) };
  return undefined;
}

async function push(api: PushClient, values: Values): Promise<unknown> {
  const targets = [values.device, values.user, values.broadcast ? 'all' : undefined].filter((t) => t !== undefined);
  if (targets.length !== 1) throw new UsageError('give exactly one of --device, --user or --broadcast');
  const condition = conditionOf(values);
  if (condition && !values.broadcast) throw new UsageError('tag conditions go with --broadcast');
  const common = {
    ...(values.silent && { pushType: 'silent' as const }),
    ...(values.payload !== undefined && { payload: json(values.payload, '--payload') }),
    ...(values.ttl !== undefined && { ttl: Number(values.ttl) }),
    ...(values['business-id'] !== undefined && { businessId: values['business-id'] }),
  };
  const content = {
    ...(values.title !== undefined && { title: values.title }),
    ...(values.body !== undefined && { body: values.body }),
  };
  const schedule: Schedule | undefined =
    values.at !== undefined ? { at: values.at } : values['local-time'] !== undefined ? { localTime: values['local-time'] } : undefined;
  if (values.broadcast) {
    const body = { ...common, ...content, ...(condition && { condition }) };
    return schedule ? api.schedulePush('broadcast', body, schedule) : api.pushBroadcast(body);
  }
  const target = values.device !== undefined ? { device: values.device } : { user: values.user as string };
  if (values.template !== undefined) {
    const body: TemplatePush = { ...common, target, template: values.template, values: vars(values.vars) };
    return schedule ? api.schedulePush('template', body, schedule) : api.pushTemplate(body);
  }
  const body = { ...common, ...content, target };
  return schedule ? api.schedulePush('simple', body, schedule) : api.pushSimple(body);
}

async function keys(api: PushClient, [action, id]: string[], values: Values): Promise<unknown> {
  switch (action) {
    case 'list':
    case undefined:
      return api.keys();
    case 'create': {
      const kind = (values.kind ?? 'hmac') as 'hmac' | 'rsa' | 'ed25519';
      const pem = values['public-key'] !== undefined ? readFileSync(values['public-key'], 'utf8') : undefined;
      return api.createKey(kind, pem);
    }
    case 'disable':
    case 'enable':
    case 'delete': {
      if (!id) throw new UsageError(`usage: mps keys ${action} ID`);
      if (action === 'delete') return api.deleteKey(id).then(() => ({ deleted: id }));
      return action === 'disable' ? api.disableKey(id) : api.enableKey(id);
    }
    default:
      throw new UsageError(`unknown keys action ${action}`);
  }
}

async function templates(api: PushClient, [action, name]: string[], values: Values): Promise<unknown> {
  if (action === 'list' || action === undefined) return api.templates();
  if (!name) throw new UsageError(`usage: mps templates ${action} NAME`);
  switch (action) {
    case 'get':
      return api.template(name);
    case 'put':
      return api.putTemplate({ name, ...(values.title !== undefined && { title: values.title }), ...(values.body !== undefined && { body: values.body }) });
    case 'delete':
      return api.deleteTemplate(name).then(() => ({ deleted: name }));
    default:
      throw new UsageError(`unknown templates action ${action}`);
  }
}

/** Connects N devices of the app and prints each message they receive, for a while. */
async function simulate(credentials: Credentials, values: Values, print: (line: string) => void): Promise<unknown> {
  if (!credentials.app || !credentials.gatewayUrl) throw new UsageError('device simulate needs app and gatewayUrl in the credentials file (or MPS_APP and MPS_GATEWAY_URL)');
  const count = Number(values.count ?? 1);
  const seconds = Number(values.seconds ?? 30);
  if (!Number.isInteger(count) || count < 1 || count > 10_000) throw new UsageError('--count must be 1-10000');
  const devices: DeviceClient[] = [];
  const received: { device: string; id: string; title?: string; body?: string }[] = [];
  for (let i = 0; i < count; i++) {
    const client = new DeviceClient({
      url: credentials.gatewayUrl,
      app: credentials.app,
      platform: (values.platform ?? 'web') as Platform,
      credentials: new MemoryCredentialStore(),
      onMessage: (m) => {
        const line = { device: client.deviceId ?? '', id: m.id, ...(m.title !== undefined && { title: m.title }), ...(m.body !== undefined && { body: m.body }) };
        received.push(line);
        print(`${line.device} received ${m.id}: ${m.title ?? ''} ${m.body ?? ''}`.trim());
      },
    });
    devices.push(client);
    await client.connect();
  }
  print(`${count} simulated device(s) connected: ${devices.map((d) => d.deviceId).join(' ')}`);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  for (const d of devices) d.close();
  return { devices: devices.map((d) => d.deviceId), received };
}

export async function main(argv: string[], out: (line: string) => void = console.log): Promise<void> {
  const { values, positionals } = parse(argv);
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') throw new UsageError(USAGE);
  const credentials = credentialsFrom(values.credentials);
  const api = new PushClient({ baseUrl: credentials.apiUrl, keyId: credentials.keyId, secret: credentials.secret });
  const need = (what: string) => {
    if (rest[0] === undefined) throw new UsageError(`usage: mps ${command} ${what}`);
    return rest[0];
  };
  let result: unknown;
  switch (command) {
    case 'push':
      result = await push(api, values);
      break;
    case 'message':
      result = await api.message(need('ID'));
      break;
    case 'messages':
      result = await api.messages(values.limit !== undefined ? { limit: Number(values.limit) } : {});
      break;
    case 'revoke':
      result = await api.revoke(need('ID'));
      break;
    case 'report': {
      const status = await api.message(need('ID'));
      const { targeted, delivered } = status.counts;
      result = { id: status.id, counts: status.counts, deliveryRate: targeted === 0 ? 0 : delivered / targeted };
      break;
    }
    case 'keys':
      result = await keys(api, rest, values);
      break;
    case 'templates':
      result = await templates(api, rest, values);
      break;
    case 'device':
      if (rest[0] === 'revoke') {
        if (rest[1] === undefined) throw new UsageError('usage: mps device revoke ID');
        result = await api.revokeDevice(rest[1]);
        break;
      }
      if (rest[0] !== 'simulate') throw new UsageError('usage: mps device simulate [--count N] [--seconds S] | device revoke ID');
      result = await simulate(credentials, values, values.json ? () => undefined : out);
      break;
    default:
      throw new UsageError(`unknown command ${command}\n${USAGE}`);
  }
  out(values.json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
}

/** Exit codes: 0 done, 1 the API refused (its code is printed), 2 a usage error. */
export function run(argv: string[]): void {
  main(argv).catch((error: unknown) => {
    if (error instanceof ApiRequestError) {
      console.error(`error ${error.status} ${error.code}: ${error.message}`);
      process.exit(1);
    }
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(error instanceof UsageError ? 2 : 1);
  });
}
