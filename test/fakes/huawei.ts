/**
 * A fake Huawei Push Kit (HMS Core) v1: the OAuth client-credentials endpoint of
 * oauth-login.cloud.huawei.com and `POST /v1/<appId>/messages:send` of push-api.cloud.huawei.com,
 * on one TLS origin (HTTP/1.1 and HTTP/2).
 */
import { randomBytes, randomInt } from 'node:crypto';
import {
  credentials, fakeOf, isObject, parseJson, Rules, serve,
  type Exchange, type Fake, type Received, type Refused, type Reply, type RuleScope, type TokenRequest,
} from './common.js';
import type { TestTls } from './tls.js';

/**
 * Result codes with the HTTP status the fake answers them with. Huawei documents the statuses
 * (400 parameters, 401 auth, 500 internal, 503 traffic control) for v3 only; v1 is assumed alike.
 */
export const HUAWEI_CODES = {
  '80000000': { status: 200, msg: 'Success' },
  '80100000': { status: 200, msg: 'Some tokens are successfully sent' },
  '80100001': { status: 400, msg: 'Some request parameters are incorrect' },
  '80100003': { status: 400, msg: 'Illegal payload' },
  '80100016': { status: 400, msg: 'The message contains sensitive information' },
  '80200001': { status: 401, msg: 'Oauth authentication error' },
  '80200003': { status: 401, msg: 'Oauth Token expired' },
  '80300007': { status: 400, msg: 'All the tokens are invalid' },
  '80300008': { status: 400, msg: 'The message body size exceeds the default value' },
  '80300010': { status: 400, msg: 'The number of tokens in the message body exceeds the default value' },
  '80600003': { status: 500, msg: 'Request OAuth service failed' },
  '81000001': { status: 500, msg: 'System inner error' },
} as const;

export type HuaweiCode = keyof typeof HUAWEI_CODES;

export interface HuaweiOptions {
  tls: TestTls;
  appId: string;
  appSecret: string;
}

export type HuaweiRule =
  /** This device token is illegal: left out and listed in `illegal_tokens` (80100000 or 80300007). */
  | { token: string; times?: number }
  /** The whole request is answered with this code and/or HTTP status (503 alone: traffic control, empty body). */
  | { token?: undefined; code?: HuaweiCode; status?: number; msg?: string; times?: number; retryAfter?: number };

export interface HuaweiBody {
  validate_only?: boolean;
  message: Record<string, unknown>;
}

export interface FakeHuawei extends Fake<HuaweiRule, HuaweiBody> {
  tokenRequests: TokenRequest[];
  /** Makes every access token issued so far expired (sends then get 80200003). */
  expireTokens(): void;
}

const TOKEN_PATHS = new Set(['/oauth2/v3/token', '/oauth2/v2/token']);
const ACCESS_TOKEN_LIFETIME_S = 3600;
const MAX_TOKENS = 1000;
const MAX_BODY_BYTES = 4096;
const CATEGORIES = new Set(['IM', 'VOIP', 'SUBSCRIPTION', 'TRAVEL', 'HEALTH', 'WORK', 'ACCOUNT', 'EXPRESS', 'FINANCE',
  'DEVICE_REMINDER', 'SYSTEM_REMINDER', 'MAIL', 'PLAY_VOICE', 'MARKETING']);
const DURATION = /^\d+(\.\d{1,9})?s$/;

interface Grant {
  appId: string;
  expiresAt: number;
}

class Outcome {
  constructor(readonly code: HuaweiCode, readonly msg: string = HUAWEI_CODES[code].msg) {}
}

export async function startFakeHuawei(options: HuaweiOptions): Promise<FakeHuawei> {
  const rules = new Rules<HuaweiRule>();
  const received: Received<HuaweiBody>[] = [];
  const refused: Refused<HuaweiBody>[] = [];
  const tokenRequests: TokenRequest[] = [];
  const grants = new Map<string, Grant>();

  function grantToken(exchange: Exchange): Reply {
    tokenRequests.push({ path: exchange.path, host: exchange.headers.host, at: Date.now() });
    const form = new URLSearchParams(exchange.body.toString('utf8'));
    if (form.get('grant_type') !== 'client_credentials' || form.get('client_id') !== options.appId
      || form.get('client_secret') !== options.appSecret) {
      return { status: 400, body: { error: 1101, sub_error: 20002, error_description: 'invalid client' } };
    }
    // Huawei's tokens are base64 (with '/', '+', '=') and its JSON escapes '/' as '\/'.
    const accessToken = `CF${randomBytes(60).toString('base64')}`;
    grants.set(accessToken, { appId: options.appId, expiresAt: Date.now() + ACCESS_TOKEN_LIFETIME_S * 1000 });
    const json = JSON.stringify({ access_token: accessToken, expires_in: ACCESS_TOKEN_LIFETIME_S, token_type: 'Bearer' });
    return { status: 200, headers: { 'content-type': 'application/json;charset=UTF-8' }, body: json.replaceAll('/', '\\/') };
  }

  function send(exchange: Exchange, appId: string): Reply {
    const grant = grants.get(credentials(exchange.headers, 'bearer') ?? '');
    if (grant === undefined || grant.appId !== appId) return answer(new Outcome('80200001'));
    if (grant.expiresAt <= Date.now()) return answer(new Outcome('80200003'));
    const checked = checkRequest(exchange.body);
    if (checked instanceof Outcome) return answer(checked);

    const tokens = Array.isArray(checked.message.token) ? (checked.message.token as string[]) : [];
    const at = Date.now();
    const refuse = (token: string, status: number, reason: string, retryAfter?: number) =>
      refused.push({ token, headers: exchange.headers, body: checked, at, connection: exchange.connection, status, reason, ...(retryAfter !== undefined && { retryAfter }) });

    const rule = rules.take((r) => r.token === undefined);
    if (rule !== undefined && rule.token === undefined) {
      const headers: Record<string, string> = rule.retryAfter === undefined ? {} : { 'retry-after': String(rule.retryAfter) };
      const reply: Reply = rule.code === undefined
        ? { status: rule.status ?? 503, headers }
        : { ...answer(new Outcome(rule.code, rule.msg), rule.status), headers };
      for (const token of tokens) refuse(token, reply.status, rule.code ?? `HTTP ${reply.status}`, rule.retryAfter);
      return reply;
    }
    if (checked.validate_only === true) return answer(new Outcome('80000000'));

    const illegal = tokens.filter((token) => rules.take((r) => r.token === token) !== undefined);
    for (const token of tokens) {
      if (!illegal.includes(token)) received.push({ token, headers: exchange.headers, body: checked, at, connection: exchange.connection });
    }
    if (tokens.length === 0) {
      // A topic or condition message: recorded once under its target.
      received.push({ token: String(checked.message.topic ?? checked.message.condition), headers: exchange.headers, body: checked, at, connection: exchange.connection });
    }
    const illegalCode: HuaweiCode = illegal.length === tokens.length ? '80300007' : '80100000';
    for (const token of illegal) refuse(token, HUAWEI_CODES[illegalCode].status, illegalCode);
    if (illegal.length === 0) return answer(new Outcome('80000000'));
    if (illegal.length === tokens.length) return answer(new Outcome('80300007'));
    const msg = JSON.stringify({ success: tokens.length - illegal.length, failure: illegal.length, illegal_tokens: illegal });
    return answer(new Outcome('80100000', msg));
  }

  const listener = await serve({ tls: options.tls, http1: true }, (exchange) => {
    if (exchange.method === 'POST' && TOKEN_PATHS.has(exchange.path)) return grantToken(exchange);
    const match = /^\/v1\/([^/]+)\/messages:send$/.exec(exchange.path);
    if (exchange.method === 'POST' && match !== null) return send(exchange, decodeURIComponent(match[1] ?? ''));
    return { status: 404, body: { code: '404', msg: 'Not Found' } };
  });
  return Object.assign(fakeOf(listener, rules, received, refused), {
    tokenRequests,
    expireTokens() {
      for (const grant of grants.values()) grant.expiresAt = 0;
    },
  });
}

function answer(result: Outcome, status?: number): Reply {
  const requestId = `${Date.now()}${randomInt(1_000_000, 9_999_999)}`;
  return { status: status ?? HUAWEI_CODES[result.code].status, body: { code: result.code, msg: result.msg, requestId } };
}

// ---- Request validation ----

function checkRequest(raw: Buffer): HuaweiBody | Outcome {
  const body = parseJson(raw.toString('utf8'));
  if (!isObject(body) || !isObject(body.message)) return new Outcome('80100003', 'Illegal payload, message must be an object');
  if (body.validate_only !== undefined && typeof body.validate_only !== 'boolean') return new Outcome('80100001', 'validate_only must be a boolean');
  const message = body.message;
  const withoutTokens = JSON.stringify({ ...body, message: { ...message, token: undefined } });
  if (Buffer.byteLength(withoutTokens) > MAX_BODY_BYTES) return new Outcome('80300008');
  return checkTarget(message)
    ?? checkPayload(message)
    ?? (body as unknown as HuaweiBody);
}

function checkTarget(message: Record<string, unknown>): Outcome | undefined {
  const targets = ['token', 'topic', 'condition'].filter((name) => message[name] !== undefined);
  if (targets.length !== 1) return new Outcome('80100001', 'Exactly one of token, topic or condition must be set');
  const tokens = message.token;
  if (tokens === undefined) return undefined;
  if (!Array.isArray(tokens) || tokens.length === 0 || tokens.length > MAX_TOKENS) return new Outcome('80300010');
  if (!tokens.every((token) => typeof token === 'string' && token !== '')) return new Outcome('80100001', 'token must be an array of strings');
  return undefined;
}

function checkPayload(message: Record<string, unknown>): Outcome | undefined {
  if (message.data !== undefined && typeof message.data !== 'string') return new Outcome('80100001', 'data must be a JSON string');
  const notification = message.notification;
  if (notification !== undefined && !isObject(notification)) return new Outcome('80100001', 'notification must be an object');
  const android = message.android;
  if (android === undefined) {
    return notification === undefined ? undefined : new Outcome('80100001', '[android.notification.click_action] is mandatory for a notification');
  }
  if (!isObject(android)) return new Outcome('80100001', 'android must be an object');
  const collapseKey = android.collapse_key;
  if (collapseKey !== undefined && !(Number.isInteger(collapseKey) && (collapseKey as number) >= -1 && (collapseKey as number) <= 100)) {
    return new Outcome('80100001', 'collapse_key must be an integer from -1 to 100');
  }
  if (android.urgency !== undefined && android.urgency !== 'HIGH' && android.urgency !== 'NORMAL') return new Outcome('80100001', 'urgency must be HIGH or NORMAL');
  if (android.category !== undefined && !CATEGORIES.has(String(android.category))) return new Outcome('80100001', 'category is invalid');
  if (android.ttl !== undefined && !(typeof android.ttl === 'string' && DURATION.test(android.ttl))) return new Outcome('80100001', 'ttl must be a duration like "86400s"');
  if (android.data !== undefined && typeof android.data !== 'string') return new Outcome('80100001', 'android.data must be a JSON string');
  const androidNotification = android.notification;
  if (androidNotification === undefined) {
    return notification === undefined ? undefined : new Outcome('80100001', '[android.notification.click_action] is mandatory for a notification');
  }
  if (!isObject(androidNotification)) return new Outcome('80100001', 'android.notification must be an object');
  const importance = androidNotification.importance;
  if (importance !== undefined && importance !== 'LOW' && importance !== 'NORMAL' && importance !== 'HIGH') {
    return new Outcome('80100001', 'importance must be LOW, NORMAL or HIGH');
  }
  return checkClickAction(androidNotification.click_action);
}

function checkClickAction(action: unknown): Outcome | undefined {
  if (!isObject(action)) return new Outcome('80100001', '[android.notification.click_action] is mandatory for a notification');
  const present = (name: string) => typeof action[name] === 'string' && action[name] !== '';
  switch (action.type) {
    case 1:
      return present('intent') || present('action') ? undefined : new Outcome('80100001', 'click_action type 1 needs intent or action');
    case 2:
      return present('url') ? undefined : new Outcome('80100001', 'click_action type 2 needs url');
    case 3:
      return undefined;
    case 4:
      return present('rich_resource') ? undefined : new Outcome('80100001', 'click_action type 4 needs rich_resource');
    default:
      return new Outcome('80100001', 'click_action type must be 1, 2, 3 or 4');
  }
}
