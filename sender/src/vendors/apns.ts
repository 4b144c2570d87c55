/**
 * APNs through @parse/node-apn: one Provider (one HTTP/2 connection, many concurrent streams) per
 * app and credentials, token (p8 JWT) or certificate auth, production or sandbox.
 */
import type { ClientHttp2Session } from 'node:http2';
import apn from '@parse/node-apn';
import type { ApnsConfig } from '@mps/shared';
import { messageData, type Endpoints, type OutgoingMessage, type SendResult, type VendorClient } from './types.js';

/** Reasons that mean this token will never work for this app (VENDORS.md, APNs). */
const DEAD_TOKEN = new Set(['BadDeviceToken', 'Unregistered', 'ExpiredToken', 'DeviceTokenNotForTopic']);
const RETRY_STATUS = new Set([429, 500, 503]);

export function notificationOf(message: OutgoingMessage, bundleId: string): apn.Notification {
  const options = message.options.apns ?? {};
  const note = new apn.Notification();
  note.id = message.id;
  note.topic = bundleId;
  note.expiry = Math.floor(message.expiresAt.getTime() / 1000);
  note.payload = messageData(message);
  if (message.pushType === 'silent') {
    note.pushType = 'background';
    note.contentAvailable = true;
    note.priority = 5;
  } else {
    note.pushType = 'alert';
    note.alert = { ...(message.content.title !== undefined && { title: message.content.title }), body: message.content.body ?? '' };
    note.priority = options.priority ?? 10;
    if (options.sound !== undefined) note.sound = options.sound;
    if (options.badge !== undefined) note.badge = options.badge;
    if (options.mutableContent) note.mutableContent = true;
  }
  // A resend (after a sender crash mid-request) replaces the first copy on the device.
  note.collapseId = options.collapseId ?? message.id;
  if (options.threadId !== undefined) note.threadId = options.threadId;
  return note;
}

/** Below this a 410 timestamp is seconds, not ms (as sideshow/apns2 reads it; 1e11 ms is 1973). */
const SECONDS_BELOW = 1e11;

/** When APNs last found the token invalid: the 410's `timestamp`, ms since the epoch as Apple documents. */
function invalidSince(timestamp: unknown): Date | undefined {
  const value = Number(timestamp);
  if (timestamp === undefined || timestamp === null || !Number.isFinite(value) || value <= 0) return undefined;
  return new Date(value < SECONDS_BELOW ? value * 1000 : value);
}

export function apnsResultOf(failure: apn.ResponseFailure): SendResult {
  const reason = failure.response?.reason ?? failure.error?.message ?? `status ${failure.status}`;
  if (failure.error !== undefined) return { status: 'retry', reason };
  if (DEAD_TOKEN.has(reason)) {
    const since = invalidSince(failure.response?.timestamp);
    return { status: 'invalid-token', reason, ...(since !== undefined && { since }) };
  }
  // APNs sends no Retry-After: TooManyRequests and 5xx are retried with the sender's backoff.
  if (failure.status !== undefined && RETRY_STATUS.has(Number(failure.status))) return { status: 'retry', reason };
  return { status: 'failed', reason };
}

interface NodeApnClient {
  closeAndDestroySession(session?: ClientHttp2Session): Promise<void>;
}

/**
 * node-apn (8.1.0) destroys a session at once when it is already closing: on a second GOAWAY (a
 * graceful shutdown may send two, RFC 9113 6.8) that fails the streams the server goes on to
 * answer, and the sender would send again what APNs delivered. Its sessions close gracefully instead.
 */
function closeSessionsGracefully(provider: apn.Provider): void {
  const client = (provider as unknown as { client: NodeApnClient }).client;
  client.closeAndDestroySession = async (session) => {
    if (session === undefined || session === null || session.destroyed) return;
    const closed = new Promise((resolve) => session.once('close', resolve));
    session.close();
    await closed;
  };
}

export function apnsClient(_app: string, config: ApnsConfig, endpoints: Endpoints): VendorClient {
  const origin = endpoints.apnsOrigin === '' ? undefined : new URL(endpoints.apnsOrigin);
  const credentials: apn.ProviderOptions =
    config.auth === 'token'
      ? { token: { key: config.key, keyId: config.keyId, teamId: config.teamId } }
      : config.pfx !== undefined
        ? { pfx: Buffer.from(config.pfx, 'base64'), ...(config.passphrase !== undefined && { passphrase: config.passphrase }) }
        : { cert: config.cert as string, key: config.key as string, ...(config.passphrase !== undefined && { passphrase: config.passphrase }) };
  const provider = new apn.Provider({
    ...credentials,
    production: config.production,
    // node-apn would retry a 429 or 5xx at once, up to 3 times: it looks for `Retry-After` among
    // HTTP/2's lower-case headers under its capitalised name, so never waits. The sender's backoff does.
    connectionRetryLimit: 0,
    ...(origin && { address: origin.hostname, port: Number(origin.port || 443) }),
    ...(endpoints.ca !== undefined && { ca: [endpoints.ca] }),
  });
  closeSessionsGracefully(provider);

  return {
    async send(message, tokens) {
      const response = await provider.send(notificationOf(message, config.bundleId), tokens);
      const failures = new Map(response.failed.map((f) => [f.device, f]));
      return tokens.map((token) => {
        const failure = failures.get(token);
        return failure === undefined ? { status: 'sent' } : apnsResultOf(failure);
      });
    },
    async close() {
      await provider.shutdown();
    },
  };
}
