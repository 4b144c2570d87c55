/**
 * The server SDK: signs every request exactly as the control plane verifies it (shared/signing).
 * Node only (it signs with node:crypto).
 */
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import {
  SignatureHeader,
  signDeviceToken,
  signRequest,
  TokenAudience,
  type ChannelConfigs,
  type ChannelSummary,
  type SigningKey,
  type Vendor,
} from '@mps/shared';
import type { paths } from './api-types.js';

/** An HMAC key's secret, or the private half of an uploaded RSA-2048 / Ed25519 public key. */
export type PushClientOptions = {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  keyId: string;
  /**
   * Extra tries of an idempotent call after a network error, a 429 or a 5xx (default 2), with
   * backoff or the server's Retry-After. Idempotent: GET, PUT and DELETE; a push with a
   * `businessId`; revokes, tag and attribute changes, dry runs. Other calls are tried once.
   */
  retries?: number;
} & ({ secret: string; privateKey?: never } | { privateKey: KeyObject | string; secret?: never });

function signingKey(options: PushClientOptions): SigningKey {
  if (options.secret !== undefined) return { kind: 'hmac', secret: options.secret };
  const privateKey = typeof options.privateKey === 'string' ? createPrivateKey(options.privateKey) : (options.privateKey as KeyObject);
  const type = privateKey.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'ed25519') throw new Error(`unsupported private key type ${String(type)}: use RSA or Ed25519`);
  return { kind: type, privateKey };
}

export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The server's Retry-After, when it sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

/** POSTs that change nothing more when repeated. */
const IDEMPOTENT_POST = /\/(revoke|tags|attributes|dry-run)$/;

function isIdempotent(method: string, path: string, body: unknown): boolean {
  if (method !== 'POST') return true;
  if (IDEMPOTENT_POST.test(path)) return true;
  return typeof body === 'object' && body !== null && typeof (body as { businessId?: unknown }).businessId === 'string';
}

/** A network error (fetch rejects with a TypeError), a rate limit or a server-side failure. */
const isRetryable = (error: unknown): boolean =>
  error instanceof ApiRequestError ? error.status === 429 || error.status >= 500 : error instanceof TypeError;

function retryDelayMs(attempt: number, error: unknown): number {
  const after = error instanceof ApiRequestError ? error.retryAfterMs : undefined;
  return after ?? 200 * 2 ** (attempt - 1) * (0.5 + Math.random());
}

export type PushTarget = { device: string } | { user: string };

/** Send later: at an instant, or at a wall-clock time in each target device's time zone. */
export type Schedule = { at: string } | { localTime: string };


/** A route's JSON body, or its answer with status S, as the control plane's schemas describe them. */
type Json<T> = T extends { content: { 'application/json': infer B } } ? B : never;
type Method = 'get' | 'post' | 'put' | 'delete';
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
export type RequestBody<P extends keyof paths, M extends Method> = Json<Operation<P, M> extends { requestBody?: infer B } ? NonNullable<B> : never>;
export type ResponseBody<P extends keyof paths, M extends Method, S extends number> = Json<
  Operation<P, M> extends { responses: infer R } ? (S extends keyof R ? R[S] : never) : never
>;

/** A push body without its schedule (schedulePush adds it). */
type Unscheduled<T> = Omit<T, 'schedule'>;

export type SimplePush = Omit<Unscheduled<RequestBody<'/v1/push/simple', 'post'>>, 'target'> & { target: PushTarget };
export type TemplatePush = Omit<Unscheduled<RequestBody<'/v1/push/template', 'post'>>, 'target'> & { target: PushTarget };
export type MultiplePush = Omit<Unscheduled<RequestBody<'/v1/push/multiple', 'post'>>, 'targets'> & {
  targets: (PushTarget & { values?: Record<string, string> })[];
};
export type TaskAccepted = ResponseBody<'/v1/push/multiple', 'post', 200>;
export type Template = ResponseBody<'/v1/templates/{name}', 'get', 200>;
export type MessageSummary = Omit<MessageStatus, 'targets' | 'vendor'>;
export type Audience = NonNullable<RequestBody<'/v1/push/dry-run', 'post'>['audience']>;

/** Tags, attributes and device facts combined with and / or / not (docs/api.md). */
export type Condition =
  | { tag: string }
  | { attribute: string; equals?: string; in?: string[] }
  | { fact: 'platform' | 'osVersion' | 'appVersion' | 'sdkVersion' | 'locale' | 'timezone'; equals?: string; in?: string[] }
  | { and: Condition[] }
  | { or: Condition[] }
  | { not: Condition };

/** The schema says only "an object" of a condition; Condition spells it out. */
export type Selection = Omit<RequestBody<'/v1/push/dry-run', 'post'>, 'condition'> & { condition?: Condition | Record<string, unknown> };
export type BroadcastPush = Omit<Unscheduled<RequestBody<'/v1/push/broadcast', 'post'>>, 'condition'> & Selection;
export type Accepted = ResponseBody<'/v1/push/simple', 'post', 200>;
/** What a push with a schedule answers. */
export type Scheduled = Exclude<ResponseBody<'/v1/push/simple', 'post', 202>, Accepted>;
export type MessageStatus = ResponseBody<'/v1/messages/{id}', 'get', 200>;
export type TargetStatus = MessageStatus['targets'][number]['status'];
export type VendorSendStatus = MessageStatus['vendor']['sends'][number]['status'];
export type KeyInfo = ResponseBody<'/v1/keys/{id}/disable', 'post', 200>;
export type Profile = ResponseBody<'/v1/devices/{id}/tags', 'post', 200>;
export type DeviceInfo = ResponseBody<'/v1/devices/{id}', 'get', 200>;
export type DeviceRevoked = ResponseBody<'/v1/devices/{id}/revoke', 'post', 200>;
/** One of a device's latest messages (GET /v1/devices/{id}/messages). */
export type RecentMessage = ResponseBody<'/v1/devices/{id}/messages', 'get', 200>['messages'][number];

const profilePath = (of: PushTarget) =>
  'device' in of ? `/v1/devices/${encodeURIComponent(of.device)}` : `/v1/users/${encodeURIComponent(of.user)}`;

export class PushClient {
  private readonly key: SigningKey;

  constructor(private readonly options: PushClientOptions) {
    this.key = signingKey(options);
  }

  /**
   * Sends a signed request (signed anew for each try); resolves with the parsed JSON body or throws
   * ApiRequestError. Idempotent calls are retried (PushClientOptions.retries).
   */
  async request<T>(method: string, pathAndQuery: string, body?: unknown): Promise<T> {
    const tries = 1 + (isIdempotent(method, pathAndQuery.split('?')[0] as string, body) ? (this.options.retries ?? 2) : 0);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.send<T>(method, pathAndQuery, body);
      } catch (error) {
        if (attempt >= tries || !isRetryable(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs(attempt, error)));
      }
    }
  }

  private async send<T>(method: string, pathAndQuery: string, body?: unknown): Promise<T> {
    const raw = body === undefined ? '' : JSON.stringify(body);
    const q = pathAndQuery.indexOf('?');
    const timestamp = String(Date.now());
    const nonce = randomBytes(16).toString('base64url');
    const signature = signRequest(this.key, {
      method,
      path: q === -1 ? pathAndQuery : pathAndQuery.slice(0, q),
      query: q === -1 ? '' : pathAndQuery.slice(q + 1),
      timestamp,
      nonce,
      body: raw,
    });
    const response = await fetch(`${this.options.baseUrl.replace(/\/+$/, '')}${pathAndQuery}`, {
      method,
      headers: {
        ...(body !== undefined && { 'content-type': 'application/json' }),
        [SignatureHeader.KEY]: this.options.keyId,
        [SignatureHeader.TIMESTAMP]: timestamp,
        [SignatureHeader.NONCE]: nonce,
        [SignatureHeader.SIGNATURE]: signature,
      },
      ...(body !== undefined && { body: raw }),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // Not ours: a proxy's error page, say.
      throw new ApiRequestError(response.status, 'BAD_RESPONSE', `the server answered ${response.status} with a body that is not JSON`);
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      const retryAfter = Number(response.headers.get('retry-after'));
      throw new ApiRequestError(
        response.status,
        error?.code ?? 'UNKNOWN',
        error?.message ?? response.statusText,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
      );
    }
    return parsed as T;
  }

  pushSimple(push: SimplePush): Promise<Accepted> {
    return this.request('POST', '/v1/push/simple', push);
  }

  /** Any push, sent later: `kind` is simple, template, multiple or broadcast. */
  schedulePush(
    kind: 'simple' | 'template' | 'multiple' | 'broadcast',
    push: SimplePush | TemplatePush | MultiplePush | BroadcastPush,
    schedule: Schedule,
  ): Promise<Scheduled> {
    return this.request('POST', `/v1/push/${kind}`, { ...push, schedule });
  }

  schedule(id: string): Promise<{ scheduleId: string; firings: { timeZone: string | null; fireAt: string; status: string; result: unknown; error: string | null }[] }> {
    return this.request('GET', `/v1/schedules/${encodeURIComponent(id)}`);
  }

  cancelSchedule(id: string): Promise<{ cancelled: number }> {
    return this.request('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
  }

  pushTemplate(push: TemplatePush): Promise<Accepted> {
    return this.request('POST', '/v1/push/template', push);
  }

  /** Up to 1,000 targets, each with its own placeholder values, as one task. */
  pushMultiple(push: MultiplePush): Promise<TaskAccepted> {
    return this.request('POST', '/v1/push/multiple', push);
  }

  task(id: string): Promise<{ taskId: string; counts: MessageStatus['counts']; messages: MessageSummary[] }> {
    return this.request('GET', `/v1/tasks/${encodeURIComponent(id)}`);
  }

  revokeTask(id: string): Promise<{ taskId: string; messages: { id: string; revokedAt: string; stopped: number }[] }> {
    return this.request('POST', `/v1/tasks/${encodeURIComponent(id)}/revoke`);
  }

  messages(query: { limit?: number; before?: string; since?: string; until?: string; mode?: string } = {}): Promise<{
    messages: MessageSummary[];
    next: string | null;
  }> {
    const params = new URLSearchParams(
      Object.entries(query)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]): [string, string] => [k, String(v)]),
    );
    const q = params.toString();
    return this.request('GET', `/v1/messages${q === '' ? '' : `?${q}`}`);
  }

  putTemplate(template: Omit<Template, 'placeholders'>): Promise<Template> {
    const { name, ...body } = template;
    return this.request('PUT', `/v1/templates/${encodeURIComponent(name)}`, body);
  }

  template(name: string): Promise<Template> {
    return this.request('GET', `/v1/templates/${encodeURIComponent(name)}`);
  }

  templates(): Promise<{ templates: Template[] }> {
    return this.request('GET', '/v1/templates');
  }

  deleteTemplate(name: string): Promise<void> {
    return this.request('DELETE', `/v1/templates/${encodeURIComponent(name)}`);
  }

  device(id: string): Promise<DeviceInfo> {
    return this.request('GET', `/v1/devices/${encodeURIComponent(id)}`);
  }

  /** The device's 20 latest messages, newest first, with their status for it. */
  deviceMessages(id: string): Promise<{ messages: RecentMessage[] }> {
    return this.request('GET', `/v1/devices/${encodeURIComponent(id)}/messages`);
  }

  /**
   * Revokes the device's credentials: its secret stops working, connect tokens issued up to this
   * second are refused, and its connections are closed (4017 revoked). Calling again answers the
   * first revocation.
   */
  revokeDevice(id: string): Promise<DeviceRevoked> {
    return this.request('POST', `/v1/devices/${encodeURIComponent(id)}/revoke`);
  }

  user(id: string): Promise<Profile & { userId: string; devices: DeviceInfo[] }> {
    return this.request('GET', `/v1/users/${encodeURIComponent(id)}`);
  }

  /** Tags of a device (`{ device }`) or of a user (`{ user }`), shared by all the user's devices. */
  changeTags(of: PushTarget, change: { add?: string[]; remove?: string[] }): Promise<Profile> {
    return this.request('POST', `${profilePath(of)}/tags`, change);
  }

  /** Sets attributes of a device or user; a null value removes one. */
  changeAttributes(of: PushTarget, set: Record<string, string | null>): Promise<Profile> {
    return this.request('POST', `${profilePath(of)}/attributes`, { set });
  }

  /** The attribute names the app has declared (null: any name). */
  attributeNames(): Promise<{ names: string[] | null }> {
    return this.request('GET', '/v1/attributes');
  }

  /** Declares the only attribute names (up to 10) devices and users may be given; null lifts it. */
  setAttributeNames(names: string[] | null): Promise<{ names: string[] | null }> {
    return this.request('PUT', '/v1/attributes', { names });
  }

  pushBroadcast(push: BroadcastPush): Promise<Accepted> {
    return this.request('POST', '/v1/push/broadcast', push);
  }

  /** How many devices a selection reaches now; sends nothing. */
  dryRun(selection: Selection): Promise<{ devices: number }> {
    return this.request('POST', '/v1/push/dry-run', selection);
  }

  message(id: string): Promise<MessageStatus> {
    return this.request('GET', `/v1/messages/${encodeURIComponent(id)}`);
  }

  keys(): Promise<{ keys: KeyInfo[] }> {
    return this.request('GET', '/v1/keys');
  }

  /** Creates a key: an HMAC key (its secret is in the answer, once) or an uploaded RSA / Ed25519 public key. */
  createKey(kind: 'hmac' | 'rsa' | 'ed25519', publicKey?: string): Promise<KeyInfo & { secret?: string }> {
    return this.request('POST', '/v1/keys', publicKey === undefined ? { kind } : { kind, publicKey });
  }

  disableKey(id: string): Promise<KeyInfo> {
    return this.request('POST', `/v1/keys/${encodeURIComponent(id)}/disable`);
  }

  enableKey(id: string): Promise<KeyInfo> {
    return this.request('POST', `/v1/keys/${encodeURIComponent(id)}/enable`);
  }

  deleteKey(id: string): Promise<void> {
    return this.request('DELETE', `/v1/keys/${encodeURIComponent(id)}`);
  }

  /** The app's vendor channels: ids, names and fingerprints, never the secrets. */
  channels(): Promise<{ channels: ChannelSummary[] }> {
    return this.request('GET', '/v1/channels');
  }

  /** Saves (validated, sealed at rest) the credentials of one vendor channel. */
  setChannel<V extends Vendor>(vendor: V, config: ChannelConfigs[V]): Promise<ChannelSummary> {
    return this.request('PUT', `/v1/channels/${vendor}`, config);
  }

  deleteChannel(vendor: Vendor): Promise<void> {
    return this.request('DELETE', `/v1/channels/${vendor}`);
  }

  receiptCallback(): Promise<{ url: string | null }> {
    return this.request('GET', '/v1/receipts/callback');
  }

  /** Where delivery results are POSTed (see verifyReceipt). */
  setReceiptCallback(url: string): Promise<{ url: string }> {
    return this.request('PUT', '/v1/receipts/callback', { url });
  }

  deleteReceiptCallback(): Promise<void> {
    return this.request('DELETE', '/v1/receipts/callback');
  }

  revoke(id: string): Promise<{ id: string; revokedAt: string; stopped: number }> {
    return this.request('POST', `/v1/messages/${encodeURIComponent(id)}/revoke`);
  }

  /** A token your app hands to the device SDK's bind(): it binds that device to `userId`. */
  bindToken(userId: string, options: { ttlS?: number; device?: string } = {}): Promise<string> {
    return signDeviceToken({
      keyId: this.options.keyId,
      key: this.key,
      audience: TokenAudience.BIND,
      subject: userId,
      ttlS: options.ttlS ?? 600,
      ...(options.device !== undefined && { device: options.device }),
    });
  }

  /** A token a registered device can authenticate with instead of its stored secret. */
  connectToken(deviceId: string, ttlS = 600): Promise<string> {
    return signDeviceToken({ keyId: this.options.keyId, key: this.key, audience: TokenAudience.CONNECT, subject: deviceId, ttlS });
  }
}

/** Checks a receipt callback (x-mps-timestamp, x-mps-signature) against your app key's secret. */
export { verifyReceipt } from '@mps/shared';
