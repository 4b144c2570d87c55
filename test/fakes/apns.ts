/**
 * A fake APNs provider API: HTTP/2 over TLS, `POST /3/device/<token>`, token (JWT) or certificate
 * auth, checked and answered the way APNs does. Point @parse/node-apn at it with
 * `{ address: '127.0.0.1', port, ca }`.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import {
  credentials, fakeOf, isObject, nowSeconds, parseJson, Rules, serve, verifyJwt,
  type Exchange, type Fake, type Received, type Refused, type Reply, type RuleScope,
} from './common.js';
import type { TestTls } from './tls.js';

/** Every reason APNs answers, with its status. */
export const APNS_REASONS = {
  BadCollapseId: 400,
  BadDeviceToken: 400,
  BadExpirationDate: 400,
  BadMessageId: 400,
  BadPriority: 400,
  BadTopic: 400,
  DeviceTokenNotForTopic: 400,
  DuplicateHeaders: 400,
  IdleTimeout: 400,
  InvalidPushType: 400,
  MissingDeviceToken: 400,
  MissingTopic: 400,
  PayloadEmpty: 400,
  TopicDisallowed: 400,
  BadCertificate: 403,
  BadCertificateEnvironment: 403,
  ExpiredProviderToken: 403,
  Forbidden: 403,
  InvalidProviderToken: 403,
  MissingProviderToken: 403,
  UnrelatedKeyIdInToken: 403,
  BadEnvironmentKeyIdInToken: 403,
  BadPath: 404,
  MethodNotAllowed: 405,
  ExpiredToken: 410,
  Unregistered: 410,
  PayloadTooLarge: 413,
  TooManyProviderTokenUpdates: 429,
  TooManyRequests: 429,
  InternalServerError: 500,
  ServiceUnavailable: 503,
  Shutdown: 503,
} as const;

export type ApnsReason = keyof typeof APNS_REASONS;

export type ApnsAuth =
  | { kind: 'token'; publicKey: KeyObject; keyId: string; teamId: string }
  /** Requires a client certificate issued by `ca`. */
  | { kind: 'certificate'; ca: string };

export interface ApnsOptions {
  tls: TestTls;
  auth: ApnsAuth;
  /**
   * The app's bundle id. With it, apns-topic must be it (plus the suffix its push type needs).
   * With certificate auth a missing apns-topic means the certificate's subject UID, as at APNs.
   */
  topic?: string;
}

export interface ApnsRule extends RuleScope {
  reason: ApnsReason;
  /** Defaults to the reason's status. */
  status?: number;
  /** A 410's `timestamp` (ms since the epoch, as Apple documents); defaults to now. */
  timestamp?: number;
  /** Seconds, sent as `retry-after` (APNs documents none; for testing a sender's handling). */
  retryAfter?: number;
}

export interface ApnsBody {
  aps: Record<string, unknown>;
  [key: string]: unknown;
}

export type FakeApns = Fake<ApnsRule, ApnsBody>;

/** apns-push-type values, with the suffix each needs on the bundle id in apns-topic. */
const PUSH_TYPES: Record<string, string> = {
  alert: '',
  background: '',
  location: '.location-query',
  voip: '.voip',
  complication: '.complication',
  fileprovider: '.pushkit.fileprovider',
  mdm: '',
  liveactivity: '.push-type.liveactivity',
  pushtotalk: '.voip-ptt',
  widgets: '.push-type.widgets',
  controls: '.push-type.controls',
};
const PRIORITIES = new Set(['10', '5', '1']);
const MAX_PAYLOAD = 4096;
const MAX_VOIP_PAYLOAD = 5120;
const MAX_COLLAPSE_ID_BYTES = 64;
const TOKEN_LIFETIME_S = 3600;
const DEVICE_TOKEN = /^[0-9a-fA-F]{64,200}$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

class Refusal {
  constructor(readonly reason: ApnsReason) {}
}

export async function startFakeApns(options: ApnsOptions): Promise<FakeApns> {
  const rules = new Rules<ApnsRule>();
  const received: Received<ApnsBody>[] = [];
  const refused: Refused<ApnsBody>[] = [];

  function handle(exchange: Exchange): Reply {
    const checked = check(exchange, options);
    if (checked instanceof Refusal) return refuse(checked.reason);
    const { token, body } = checked;
    const rule = rules.forToken(token);
    if (rule !== undefined) {
      const status = rule.status ?? APNS_REASONS[rule.reason];
      refused.push({
        token, headers: exchange.headers, body, at: Date.now(), connection: exchange.connection, status, reason: rule.reason,
        ...(rule.retryAfter !== undefined && { retryAfter: rule.retryAfter }),
      });
      return {
        status,
        headers: rule.retryAfter === undefined ? {} : { 'retry-after': String(rule.retryAfter) },
        body: status === 410 ? { reason: rule.reason, timestamp: rule.timestamp ?? Date.now() } : { reason: rule.reason },
      };
    }
    const apnsId = exchange.headers['apns-id']?.toLowerCase() ?? randomUUID();
    received.push({ token, headers: exchange.headers, body, at: Date.now(), connection: exchange.connection });
    return { status: 200, headers: { 'apns-id': apnsId } };
  }

  const listener = await serve(
    {
      tls: options.tls,
      http1: false,
      ...(options.auth.kind === 'certificate' ? { clientCa: options.auth.ca } : {}),
      maxBodyBytes: 64 * 1024,
      goawayData: JSON.stringify({ reason: 'Shutdown' }),
    },
    handle,
  );
  return fakeOf(listener, rules, received, refused);
}

function refuse(reason: ApnsReason): Reply {
  return { status: APNS_REASONS[reason], body: { reason } };
}

interface Accepted {
  token: string;
  body: ApnsBody;
}

/** The order APNs checks in: route, auth, headers, payload. */
function check(exchange: Exchange, options: ApnsOptions): Accepted | Refusal {
  const { headers } = exchange;
  const match = /^\/3\/device\/([^/]*)$/.exec(exchange.path);
  if (match === null) return new Refusal('BadPath');
  if (exchange.method !== 'POST') return new Refusal('MethodNotAllowed');

  const auth = checkAuth(exchange, options.auth);
  if (auth !== undefined) return auth;

  const token = match[1] ?? '';
  if (token === '') return new Refusal('MissingDeviceToken');
  if (!DEVICE_TOKEN.test(token) || token.length % 2 !== 0) return new Refusal('BadDeviceToken');

  const pushType = headers['apns-push-type'];
  if (pushType !== undefined && !Object.hasOwn(PUSH_TYPES, pushType)) return new Refusal('InvalidPushType');
  const topic = headers['apns-topic'] ?? (options.auth.kind === 'certificate' ? certificateTopic(exchange) : undefined);
  if (topic === undefined || topic === '') return new Refusal('MissingTopic');
  if (options.topic !== undefined && topic !== options.topic + (PUSH_TYPES[pushType ?? 'alert'] ?? '')) return new Refusal('BadTopic');

  const priority = headers['apns-priority'] ?? '10';
  if (!PRIORITIES.has(priority)) return new Refusal('BadPriority');
  // Apple: a background notification must have priority 5; 10 is an error.
  if (pushType === 'background' && priority === '10') return new Refusal('BadPriority');
  const expiration = headers['apns-expiration'];
  if (expiration !== undefined && !/^\d+$/.test(expiration)) return new Refusal('BadExpirationDate');
  const collapseId = headers['apns-collapse-id'];
  if (collapseId !== undefined && Buffer.byteLength(collapseId) > MAX_COLLAPSE_ID_BYTES) return new Refusal('BadCollapseId');
  const apnsId = headers['apns-id'];
  if (apnsId !== undefined && !UUID.test(apnsId)) return new Refusal('BadMessageId');

  if (exchange.body.length === 0) return new Refusal('PayloadEmpty');
  if (exchange.body.length > (pushType === 'voip' ? MAX_VOIP_PAYLOAD : MAX_PAYLOAD)) return new Refusal('PayloadTooLarge');
  const body = parseJson(exchange.body.toString('utf8'));
  // Apple documents no reason for malformed JSON or a missing `aps`; PayloadEmpty is the nearest.
  if (!isObject(body) || !isObject(body.aps)) return new Refusal('PayloadEmpty');
  return { token, body: body as ApnsBody };
}

function checkAuth(exchange: Exchange, auth: ApnsAuth): Refusal | undefined {
  if (auth.kind === 'certificate') {
    const peer = exchange.socket.getPeerCertificate();
    const presented = peer !== null && Object.keys(peer).length > 0;
    return presented && exchange.socket.authorized ? undefined : new Refusal('BadCertificate');
  }
  const jwt = credentials(exchange.headers, 'bearer');
  if (jwt === undefined) return new Refusal('MissingProviderToken');
  const verified = verifyJwt(jwt, auth.publicKey, 'ES256');
  if (verified === undefined) return new Refusal('InvalidProviderToken');
  const { header, claims } = verified;
  if (header.kid !== auth.keyId || claims.iss !== auth.teamId) return new Refusal('InvalidProviderToken');
  if (typeof claims.iat !== 'number' || claims.iat > nowSeconds() + 60) return new Refusal('InvalidProviderToken');
  if (nowSeconds() - claims.iat > TOKEN_LIFETIME_S) return new Refusal('ExpiredProviderToken');
  return undefined;
}

function certificateTopic(exchange: Exchange): string | undefined {
  const uid: unknown = exchange.socket.getPeerCertificate().subject?.UID;
  return typeof uid === 'string' ? uid : undefined;
}
