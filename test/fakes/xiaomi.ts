/**
 * A fake Xiaomi MiPush server API: `POST /v3/message/regid` (and v2) with a static
 * `Authorization: key=<AppSecret>` and a form body, plus the feedback endpoint listing invalid
 * regids, on one TLS origin (HTTP/1.1 and HTTP/2). It never sends X-PUSH-HOST-LIST, which would
 * rewrite an official SDK's host list.
 */
import { randomBytes } from 'node:crypto';
import { fakeOf, Rules, serve, type Exchange, type Fake, type Received, type Refused, type Reply } from './common.js';
import type { TestTls } from './tls.js';

/** Result codes the fake answers with (dev.mi.com error-code page), with `reason` and `description`. */
export const XIAOMI_CODES = {
  0: { reason: '', description: '成功' },
  10001: { reason: 'System error', description: '系统错误' },
  10002: { reason: 'Service paused', description: '服务暂停' },
  10016: { reason: 'Missing required parameter', description: '缺失必选参数' },
  10017: { reason: 'Invalid parameter', description: '非法参数' },
  10022: { reason: 'Too many requests from this IP', description: 'IP请求频次超过限制' },
  10023: { reason: 'Too many requests from this user', description: '用户请求频次超过限制' },
  10027: { reason: 'Too many API calls of this app', description: '应用请求频次超过限制' },
  10034: { reason: 'Too many messages today', description: '当日消息数超过限制' },
  20301: { reason: 'No valid targets!', description: '发送消息失败' },
  21301: { reason: 'Invalid application secret.', description: '认证失败' },
  22022: { reason: 'Invalid package name.', description: '包名错误' },
  65009: { reason: 'Message content too long.', description: '消息内容过长' },
} as const;

export type XiaomiCode = keyof typeof XIAOMI_CODES;

export interface XiaomiOptions {
  tls: TestTls;
  appSecret: string;
  packageName: string;
}

export type XiaomiRule =
  /** This regid is invalid: left out (Xiaomi still answers ok if others are valid) and listed by the feedback API. */
  | { token: string; times?: number }
  /** The whole request is answered with this code, and/or this HTTP status (a status alone: empty body). */
  | { token?: undefined; code?: XiaomiCode; status?: number; reason?: string; times?: number; retryAfter?: number };

/** The form fields, as sent (`extra.*` keys kept flat). */
export type XiaomiBody = Record<string, string>;

export interface FakeXiaomi extends Fake<XiaomiRule, XiaomiBody> {
  /** Invalid regids refused so far and not yet fetched through the feedback API. */
  invalidRegids: string[];
}

const NO_VALID_TARGETS = 20301;
const SEND_PATHS = new Set(['/v3/message/regid', '/v2/message/regid']);
const FEEDBACK_PATH = '/v1/feedback/fetch_invalid_regids';
const MAX_TITLE_CHARS = 50;
const MAX_DESCRIPTION_CHARS = 128;
const MAX_PAYLOAD_BYTES = 4096;
const MAX_TTL_MS = 14 * 24 * 3600 * 1000;

class Outcome {
  constructor(readonly code: XiaomiCode, readonly reason: string = XIAOMI_CODES[code].reason) {}
}

export async function startFakeXiaomi(options: XiaomiOptions): Promise<FakeXiaomi> {
  const rules = new Rules<XiaomiRule>();
  const received: Received<XiaomiBody>[] = [];
  const refused: Refused<XiaomiBody>[] = [];
  const invalidRegids: string[] = [];

  function send(exchange: Exchange): Reply {
    if (exchange.headers.authorization !== `key=${options.appSecret}`) return error(new Outcome(21301));
    const checked = checkForm(exchange, options.packageName);
    if (checked instanceof Outcome) return error(checked);
    const { body, regids } = checked;

    const at = Date.now();
    const refuse = (token: string, status: number, reason: string, retryAfter?: number) =>
      refused.push({ token, headers: exchange.headers, body, at, connection: exchange.connection, status, reason, ...(retryAfter !== undefined && { retryAfter }) });

    const rule = rules.take((r) => r.token === undefined);
    if (rule !== undefined && rule.token === undefined) {
      const headers: Record<string, string> = rule.retryAfter === undefined ? {} : { 'retry-after': String(rule.retryAfter) };
      const reply: Reply = rule.code === undefined
        ? { status: rule.status ?? 503, headers }
        : { ...error(new Outcome(rule.code, rule.reason), rule.status), headers };
      for (const regid of regids) refuse(regid, reply.status, rule.code === undefined ? `HTTP ${reply.status}` : String(rule.code), rule.retryAfter);
      return reply;
    }

    const invalid = regids.filter((regid) => rules.take((r) => r.token === regid) !== undefined);
    invalidRegids.push(...invalid.filter((regid) => !invalidRegids.includes(regid)));
    const valid = regids.filter((regid) => !invalid.includes(regid));
    // With valid ones beside them, Xiaomi answers ok and lists the invalid ones by the feedback API only.
    for (const regid of invalid) refuse(regid, 200, valid.length === 0 ? String(NO_VALID_TARGETS) : 'invalid regid');
    if (valid.length === 0) return error(new Outcome(NO_VALID_TARGETS));
    for (const regid of valid) received.push({ token: regid, headers: exchange.headers, body, at, connection: exchange.connection });
    return ok({ id: messageId() }, `Received push messages for ${valid.length} REGID`);
  }

  function fetchInvalid(exchange: Exchange): Reply {
    if (exchange.headers.authorization !== `key=${options.appSecret}`) return error(new Outcome(21301));
    return ok({ list: invalidRegids.splice(0) });
  }

  const listener = await serve({ tls: options.tls, http1: true }, (exchange) => {
    if (exchange.method === 'POST' && SEND_PATHS.has(exchange.path)) return send(exchange);
    if (exchange.method === 'GET' && exchange.path === FEEDBACK_PATH) return fetchInvalid(exchange);
    return { status: 404, body: 'Not Found' };
  });
  return Object.assign(fakeOf(listener, rules, received, refused), { invalidRegids });
}

const traceId = () => `Xcm${randomBytes(10).toString('hex')}`;
const messageId = () => `scm${randomBytes(12).toString('hex')}`;

function ok(data: object, info?: string): Reply {
  return {
    status: 200,
    body: { result: 'ok', trace_id: traceId(), code: 0, data, description: XIAOMI_CODES[0].description, ...(info === undefined ? {} : { info }) },
  };
}

function error(outcome: Outcome, status = 200): Reply {
  return {
    status,
    body: { result: 'error', reason: outcome.reason, trace_id: traceId(), code: outcome.code, description: XIAOMI_CODES[outcome.code].description },
  };
}

const isInteger = (value: string) => /^-?\d+$/.test(value);

function checkForm(exchange: Exchange, packageName: string): { body: XiaomiBody; regids: string[] } | Outcome {
  if (!(exchange.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    return new Outcome(10017, 'Content-Type must be application/x-www-form-urlencoded');
  }
  const body = Object.fromEntries(new URLSearchParams(exchange.body.toString('utf8')));
  const regids = (body.registration_id ?? '').split(',').map((regid) => regid.trim()).filter((regid) => regid !== '');
  if (regids.length === 0) return new Outcome(10016, 'registration_id is required');
  const packages = (body.restricted_package_name ?? '').split(',').map((name) => name.trim());
  if (!packages.includes(packageName)) return new Outcome(22022);

  const passThrough = body.pass_through ?? '0';
  if (passThrough !== '0' && passThrough !== '1') return new Outcome(10017, 'pass_through must be 0 or 1');
  if (passThrough === '0') {
    if (!body.title || !body.description) return new Outcome(10016, 'title and description are required for a notification');
    if (body.title.length > MAX_TITLE_CHARS || body.description.length > MAX_DESCRIPTION_CHARS) return new Outcome(65009);
  }
  if (body.payload !== undefined && Buffer.byteLength(body.payload) > MAX_PAYLOAD_BYTES) return new Outcome(65009);
  const notifyType = body.notify_type;
  if (notifyType !== undefined && !(isInteger(notifyType) && Number(notifyType) >= -1 && Number(notifyType) <= 7)) {
    return new Outcome(10017, 'notify_type must be -1 or a bitmask of 1, 2 and 4');
  }
  const ttl = body.time_to_live;
  if (ttl !== undefined && !(isInteger(ttl) && Number(ttl) > 0 && Number(ttl) <= MAX_TTL_MS)) {
    return new Outcome(10017, 'time_to_live must be milliseconds, at most two weeks');
  }
  for (const field of ['notify_id', 'time_to_send'] as const) {
    const value = body[field];
    if (value !== undefined && !(isInteger(value) && Number(value) >= 0)) return new Outcome(10017, `${field} must be a non-negative integer`);
  }
  return { body, regids };
}
