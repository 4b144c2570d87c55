/**
 * A fake FCM HTTP v1 API together with Google's OAuth token endpoint, on one TLS origin (HTTP/1.1
 * and HTTP/2). Reach it through `vendorAgent({ origin, ca })` given to firebase-admin as
 * `cert(serviceAccount, agent)` and `httpAgent`, with `enableLegacyHttpTransport()`.
 */
import { randomBytes, randomInt } from 'node:crypto';
import {
  credentials, fakeOf, isObject, nowSeconds, parseJson, Rules, serve, verifyJwt,
  type Exchange, type Fake, type Received, type Refused, type Reply, type RuleScope, type TokenRequest,
} from './common.js';
import type { FcmServiceAccount } from './keys.js';
import type { TestTls } from './tls.js';

/** FcmError codes, with the HTTP and google.rpc status FCM answers them with. */
export const FCM_ERRORS = {
  UNREGISTERED: { status: 404, rpc: 'NOT_FOUND', message: 'Requested entity was not found.' },
  INVALID_ARGUMENT: { status: 400, rpc: 'INVALID_ARGUMENT', message: 'The registration token is not a valid FCM registration token' },
  SENDER_ID_MISMATCH: { status: 403, rpc: 'PERMISSION_DENIED', message: 'SenderId mismatch' },
  QUOTA_EXCEEDED: { status: 429, rpc: 'RESOURCE_EXHAUSTED', message: "Quota exceeded for quota metric 'Messages' and limit 'Messages per minute'." },
  UNAVAILABLE: { status: 503, rpc: 'UNAVAILABLE', message: 'The service is currently unavailable.' },
  INTERNAL: { status: 500, rpc: 'INTERNAL', message: 'Internal error encountered.' },
  THIRD_PARTY_AUTH_ERROR: { status: 401, rpc: 'UNAUTHENTICATED', message: 'Auth error from APNS or Web Push Service' },
} as const;

export type FcmErrorCode = keyof typeof FCM_ERRORS;

export interface FcmOptions {
  tls: TestTls;
  serviceAccount: FcmServiceAccount;
  projectId: string;
}

export interface FcmRule extends RuleScope {
  error: FcmErrorCode;
  /** Defaults to the error's status. */
  status?: number;
  message?: string;
  /** Seconds, sent as `Retry-After`. */
  retryAfter?: number;
}

export interface FcmBody {
  validate_only?: boolean;
  message: Record<string, unknown>;
}

export interface FakeFcm extends Fake<FcmRule, FcmBody> {
  /** Every request to the OAuth token endpoint, granted or not. */
  tokenRequests: TokenRequest[];
  /** Makes every access token issued so far expired (FCM then answers 401 UNAUTHENTICATED). */
  expireTokens(): void;
}

const TOKEN_PATHS = new Set(['/token', '/o/oauth2/token', '/oauth2/v4/token']);
const TOKEN_AUDIENCES = new Set([
  'https://oauth2.googleapis.com/token',
  'https://www.googleapis.com/oauth2/v4/token',
  'https://accounts.google.com/o/oauth2/token',
]);
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const SEND_SCOPES = ['https://www.googleapis.com/auth/firebase.messaging', 'https://www.googleapis.com/auth/cloud-platform'];
const ACCESS_TOKEN_LIFETIME_S = 3599;
const MAX_ASSERTION_LIFETIME_S = 3600;
const CLOCK_SKEW_S = 300;

interface Grant {
  expiresAt: number;
  /** Whether its scopes allow sending (Google issues tokens for any valid scope; FCM checks). */
  canSend: boolean;
}

export async function startFakeFcm(options: FcmOptions): Promise<FakeFcm> {
  const rules = new Rules<FcmRule>();
  const received: Received<FcmBody>[] = [];
  const refused: Refused<FcmBody>[] = [];
  const tokenRequests: TokenRequest[] = [];
  const grants = new Map<string, Grant>();
  const account = options.serviceAccount;

  function grantToken(exchange: Exchange): Reply {
    tokenRequests.push({ path: exchange.path, host: exchange.headers.host, at: Date.now() });
    const form = new URLSearchParams(exchange.body.toString('utf8'));
    if (form.get('grant_type') !== JWT_BEARER) {
      return oauthError('unsupported_grant_type', `Invalid grant_type: ${form.get('grant_type') ?? ''}`);
    }
    const jwt = verifyJwt(form.get('assertion') ?? '', account.publicKey, 'RS256');
    if (jwt === undefined || (jwt.header.kid !== undefined && jwt.header.kid !== account.json.private_key_id)) {
      return oauthError('invalid_grant', 'Invalid JWT Signature.');
    }
    const { iss, aud, iat, exp, scope } = jwt.claims;
    if (iss !== account.json.client_email) return oauthError('invalid_grant', 'Invalid email or User ID');
    if (typeof aud !== 'string' || !TOKEN_AUDIENCES.has(aud)) {
      return oauthError('invalid_grant', 'Invalid JWT: Failed audience check. The expected value was: https://oauth2.googleapis.com/token');
    }
    const now = nowSeconds();
    if (typeof iat !== 'number' || typeof exp !== 'number' || exp <= iat || exp - iat > MAX_ASSERTION_LIFETIME_S
      || iat > now + CLOCK_SKEW_S || exp < now - CLOCK_SKEW_S) {
      return oauthError('invalid_grant',
        'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
    }
    if (typeof scope !== 'string' || scope.trim() === '') return oauthError('invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    const accessToken = `ya29.c.${randomBytes(48).toString('base64url')}`;
    grants.set(accessToken, {
      expiresAt: Date.now() + ACCESS_TOKEN_LIFETIME_S * 1000,
      canSend: scope.split(' ').some((s) => SEND_SCOPES.includes(s)),
    });
    return { status: 200, body: { access_token: accessToken, expires_in: ACCESS_TOKEN_LIFETIME_S, token_type: 'Bearer' } };
  }

  function send(exchange: Exchange, project: string): Reply {
    const grant = grants.get(credentials(exchange.headers, 'bearer') ?? '');
    if (grant === undefined || grant.expiresAt <= Date.now()) {
      return rpcError(401, 'UNAUTHENTICATED',
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
        [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: grant === undefined ? 'CREDENTIALS_MISSING' : 'ACCESS_TOKEN_EXPIRED', domain: 'googleapis.com' }]);
    }
    if (!grant.canSend) return rpcError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.');
    if (project !== options.projectId) {
      return rpcError(403, 'PERMISSION_DENIED',
        `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`);
    }
    const body = parseJson(exchange.body.toString('utf8'));
    const invalid = checkRequest(body);
    if (invalid !== undefined) {
      return rpcError(400, 'INVALID_ARGUMENT', invalid.description,
        [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [invalid] }]);
    }
    const request = body as unknown as FcmBody;
    const target = targetOf(request.message);
    const rule = rules.forToken(target);
    if (rule !== undefined) {
      const reply = fcmError(rule);
      refused.push({
        token: target, headers: exchange.headers, body: request, at: Date.now(), connection: exchange.connection, status: reply.status, reason: rule.error,
        ...(rule.retryAfter !== undefined && { retryAfter: rule.retryAfter }),
      });
      return reply;
    }
    if (request.validate_only === true) return { status: 200, body: { name: `projects/${project}/messages/fake_message_id` } };
    received.push({ token: target, headers: exchange.headers, body: request, at: Date.now(), connection: exchange.connection });
    const id = `0:${Date.now()}${randomInt(100000, 999999)}%${randomBytes(8).toString('hex')}`;
    return { status: 200, body: { name: `projects/${project}/messages/${id}` } };
  }

  const listener = await serve({ tls: options.tls, http1: true }, (exchange) => {
    if (exchange.method === 'POST' && TOKEN_PATHS.has(exchange.path)) return grantToken(exchange);
    const match = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(exchange.path);
    if (exchange.method === 'POST' && match !== null) return send(exchange, decodeURIComponent(match[1] ?? ''));
    return rpcError(404, 'NOT_FOUND', `The requested URL ${exchange.path} was not found on this server.`);
  });
  return Object.assign(fakeOf(listener, rules, received, refused), {
    tokenRequests,
    expireTokens() {
      for (const grant of grants.values()) grant.expiresAt = 0;
    },
  });
}

/** Device token, `/topics/<name>` or the condition: what `received` and rules key on. */
function targetOf(message: Record<string, unknown>): string {
  if (typeof message.token === 'string') return message.token;
  if (typeof message.topic === 'string') return message.topic.startsWith('/topics/') ? message.topic : `/topics/${message.topic}`;
  return String(message.condition);
}

function oauthError(error: string, description: string): Reply {
  return { status: 400, body: { error, error_description: description } };
}

function rpcError(status: number, rpc: string, message: string, details?: object[]): Reply {
  return { status, body: { error: { code: status, message, status: rpc, ...(details === undefined ? {} : { details }) } } };
}

function fcmError(rule: FcmRule): Reply {
  const known = FCM_ERRORS[rule.error];
  const details: object[] = [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: rule.error }];
  if (rule.error === 'QUOTA_EXCEEDED') {
    details.push({ '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [{ subject: 'project', description: known.message }] });
  }
  const reply = rpcError(rule.status ?? known.status, known.rpc, rule.message ?? known.message, details);
  return rule.retryAfter === undefined ? reply : { ...reply, headers: { 'retry-after': String(rule.retryAfter) } };
}

// ---- Request validation: what FCM refuses with 400 INVALID_ARGUMENT. ----

interface FieldViolation {
  field: string;
  description: string;
}

// Proto JSON accepts both snake_case and lowerCamelCase names; these are the snake_case ones.
const FIELDS = {
  request: ['validate_only', 'message'],
  message: ['name', 'data', 'notification', 'android', 'webpush', 'apns', 'fcm_options', 'token', 'topic', 'condition'],
  notification: ['title', 'body', 'image'],
  android: ['collapse_key', 'priority', 'ttl', 'restricted_package_name', 'data', 'notification', 'fcm_options',
    'direct_boot_ok', 'bandwidth_constrained_ok', 'restricted_satellite_ok'],
  android_notification: ['title', 'body', 'icon', 'color', 'sound', 'tag', 'click_action', 'body_loc_key', 'body_loc_args',
    'title_loc_key', 'title_loc_args', 'channel_id', 'ticker', 'sticky', 'event_time', 'local_only', 'notification_priority',
    'default_sound', 'default_vibrate_timings', 'default_light_settings', 'vibrate_timings', 'visibility',
    'notification_count', 'light_settings', 'image', 'bypass_proxy_notification', 'proxy'],
  apns: ['headers', 'payload', 'fcm_options', 'live_activity_token'],
  fcm_options: ['analytics_label'],
} as const;

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const DURATION = /^\d+(\.\d{1,9})?s$/;
const MAX_TTL_S = 2_419_200;
const TOPIC = /^[a-zA-Z0-9\-_.~%]{1,900}$/;
const RESERVED_DATA_KEY = /^(from|message_type|notification|google\..*|gcm\..*)$/;

const violation = (field: string, description: string): FieldViolation => ({ field, description });

function unknownField(value: Record<string, unknown>, allowed: readonly string[], at: string): FieldViolation | undefined {
  const key = Object.keys(value).find((name) => !allowed.includes(snakeCase(name)));
  return key === undefined ? undefined : violation(at, `Invalid JSON payload received. Unknown name "${key}" at '${at}': Cannot find field.`);
}

function stringMap(value: unknown, at: string, reserved?: RegExp): FieldViolation | undefined {
  if (!isObject(value)) return violation(at, `Invalid value at '${at}': expected a map of strings`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') return violation(`${at}[${key}]`, `Invalid value at '${at}[${key}].value' (TYPE_STRING), ${JSON.stringify(item)}`);
    if (reserved?.test(key)) return violation(at, `Invalid data payload key: ${key}`);
  }
  return undefined;
}

function checkRequest(body: unknown): FieldViolation | undefined {
  if (!isObject(body)) return violation('', 'Invalid JSON payload received. Expected an object.');
  const message = body.message;
  if (!isObject(message)) return violation('message', 'Request contains an invalid argument.');
  if (body.validate_only !== undefined && typeof body.validate_only !== 'boolean') return violation('validate_only', 'Invalid value at \'validate_only\' (TYPE_BOOL)');
  return unknownField(body, FIELDS.request, '')
    ?? unknownField(message, FIELDS.message, 'message')
    ?? checkTarget(message)
    ?? (message.data === undefined ? undefined : stringMap(message.data, 'message.data', RESERVED_DATA_KEY))
    ?? checkNotification(message.notification)
    ?? checkAndroid(message.android)
    ?? checkApns(message.apns)
    ?? checkFcmOptions(message.fcm_options ?? message.fcmOptions)
    ?? (message.webpush === undefined || isObject(message.webpush) ? undefined : violation('message.webpush', 'Invalid value at \'message.webpush\''));
}

function checkTarget(message: Record<string, unknown>): FieldViolation | undefined {
  const targets = ['token', 'topic', 'condition'].filter((name) => message[name] !== undefined);
  if (targets.length !== 1) return violation('message', 'Exactly one of token, topic or condition must be specified.');
  const [name] = targets as [string];
  const value = message[name];
  if (typeof value !== 'string' || value === '') return violation(`message.${name}`, `Invalid value at 'message.${name}' (TYPE_STRING)`);
  if (name === 'topic' && !TOPIC.test(value.replace(/^\/topics\//, ''))) return violation('message.topic', 'Invalid topic name');
  return undefined;
}

function checkNotification(value: unknown): FieldViolation | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) return violation('message.notification', 'Invalid value at \'message.notification\'');
  return unknownField(value, FIELDS.notification, 'message.notification')
    ?? (Object.values(value).every((item) => typeof item === 'string') ? undefined : violation('message.notification', 'Invalid value at \'message.notification\' (TYPE_STRING)'));
}

function checkAndroid(value: unknown): FieldViolation | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) return violation('message.android', 'Invalid value at \'message.android\'');
  const bad = unknownField(value, FIELDS.android, 'message.android');
  if (bad !== undefined) return bad;
  // firebase-admin sends 'high' / 'normal' as given, and FCM takes enum names in any case.
  const priority = value.priority;
  if (priority !== undefined && !(typeof priority === 'string' && ['NORMAL', 'HIGH'].includes(priority.toUpperCase()))) {
    return violation('message.android.priority', `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), ${JSON.stringify(priority)}`);
  }
  const ttl = value.ttl;
  if (ttl !== undefined && (typeof ttl !== 'string' || !DURATION.test(ttl) || Number.parseFloat(ttl) > MAX_TTL_S)) {
    return violation('message.android.ttl', `Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), ${JSON.stringify(ttl)}`);
  }
  for (const field of ['collapse_key', 'restricted_package_name'] as const) {
    const item = value[field] ?? value[field.replace(/_(.)/g, (_, c: string) => c.toUpperCase())];
    if (item !== undefined && typeof item !== 'string') return violation(`message.android.${field}`, `Invalid value at 'message.android.${field}' (TYPE_STRING)`);
  }
  if (value.data !== undefined) {
    const data = stringMap(value.data, 'message.android.data', RESERVED_DATA_KEY);
    if (data !== undefined) return data;
  }
  const notification = value.notification;
  if (notification === undefined) return undefined;
  if (!isObject(notification)) return violation('message.android.notification', 'Invalid value at \'message.android.notification\'');
  return unknownField(notification, FIELDS.android_notification, 'message.android.notification');
}

function checkApns(value: unknown): FieldViolation | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) return violation('message.apns', 'Invalid value at \'message.apns\'');
  const bad = unknownField(value, FIELDS.apns, 'message.apns');
  if (bad !== undefined) return bad;
  if (value.headers !== undefined) {
    const headers = stringMap(value.headers, 'message.apns.headers');
    if (headers !== undefined) return headers;
  }
  const payload = value.payload;
  if (payload === undefined) return undefined;
  if (!isObject(payload) || (payload.aps !== undefined && !isObject(payload.aps))) {
    return violation('message.apns.payload', 'Invalid value at \'message.apns.payload\': aps must be an object');
  }
  return undefined;
}

function checkFcmOptions(value: unknown): FieldViolation | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) return violation('message.fcm_options', 'Invalid value at \'message.fcm_options\'');
  return unknownField(value, FIELDS.fcm_options, 'message.fcm_options');
}
