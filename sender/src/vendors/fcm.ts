/**
 * FCM HTTP v1 through firebase-admin: one Firebase app per app and service account, sendEach in
 * chunks of 500. The HTTP/1.1 transport with our keep-alive agent is used (not the library's own
 * HTTP/2 session) so that every request, OAuth included, goes where the agent says: the real hosts,
 * an operator's proxy, or a local fake (DESIGN.md: sendEach over HTTP/2 ignores httpAgent).
 */
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import type { Agent } from 'node:https';
import { deleteApp, initializeApp, type Credential } from 'firebase-admin/app';
import { getMessaging, type Message } from 'firebase-admin/messaging';
import type { FcmConfig } from '@mps/shared';
import { vendorAgent } from '../http.js';
import { parseJson, post } from './request.js';
import { CONNECTIONS_PER_HOST, messageData, retryAfterMs, secondsLeft, type Endpoints, type OutgoingMessage, type SendResult, type VendorClient } from './types.js';

const CHUNK = 500;

const DEAD_TOKEN = new Set([
  'messaging/registration-token-not-registered',
  'messaging/invalid-registration-token',
  'messaging/mismatched-credential',
]);
const RETRY = new Set(['messaging/server-unavailable', 'messaging/internal-error', 'messaging/unknown-error', 'app/network-error', 'app/network-timeout']);
/** FCM asks for at least a minute of backoff on quota errors. */
const QUOTA = new Set(['messaging/message-rate-exceeded', 'messaging/device-message-rate-exceeded', 'messaging/quota-exceeded']);
const QUOTA_BACKOFF_MS = 60_000;

/** What firebase-admin's errors carry of the answer. */
interface FcmError {
  code?: string;
  message?: string;
  httpResponse?: { headers?: Record<string, string | string[] | undefined> };
}

export function fcmMessageOf(message: OutgoingMessage, token: string): Message {
  const options = message.options.android ?? {};
  const silent = message.pushType === 'silent';
  const { title, body } = message.content;
  return {
    token,
    data: messageData(message),
    ...(!silent && { notification: { ...(title !== undefined && { title }), ...(body !== undefined && { body }) } }),
    android: {
      ttl: secondsLeft(message) * 1000,
      priority: options.priority ?? (silent ? 'normal' : 'high'),
      ...(options.collapseKey !== undefined && { collapseKey: options.collapseKey }),
      // The tag makes a resend replace the first copy on the device.
      ...(!silent && { notification: { tag: message.id, ...(options.channelId !== undefined && { channelId: options.channelId }) } }),
    },
    apns: {
      headers: { 'apns-priority': silent ? '5' : '10', 'apns-push-type': silent ? 'background' : 'alert' },
      payload: { aps: silent ? { contentAvailable: true } : {} },
    },
  };
}

export function fcmResultOf(error: FcmError | undefined): SendResult {
  const code = error?.code ?? 'unknown';
  const reason = `${code}: ${error?.message ?? ''}`.slice(0, 300);
  if (DEAD_TOKEN.has(code)) return { status: 'invalid-token', reason };
  if (code === 'messaging/invalid-argument' && /registration token/i.test(error?.message ?? '')) return { status: 'invalid-token', reason };
  // firebase-admin waits out a 503's Retry-After itself, but not one over a minute, nor a 429's.
  const after = retryAfterMs(error?.httpResponse?.headers?.['retry-after']);
  if (QUOTA.has(code)) return { status: 'retry', reason, retryAfterMs: Math.max(QUOTA_BACKOFF_MS, after ?? 0) };
  // An OAuth token that could not be had is usually the network; the credential was checked when saved.
  if (RETRY.has(code) || code === 'app/invalid-credential') return { status: 'retry', reason, ...(after !== undefined && { retryAfterMs: after }) };
  return { status: 'failed', reason };
}

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * The OAuth2 JWT-bearer grant for a service account, through our agent. firebase-admin's own cert()
 * builds its token client from a service-account object without the agent (14.5.1), which would
 * send the token request past any proxy or endpoint the operator set.
 */
function serviceAccountCredential(sa: FcmConfig['serviceAccount'], agent: Agent): Credential {
  const given = (sa as { token_uri?: unknown }).token_uri;
  const tokenUri = typeof given === 'string' && given.startsWith('https://') ? given : 'https://oauth2.googleapis.com/token';
  const key = createPrivateKey(sa.private_key);
  return {
    async getAccessToken() {
      const iat = Math.floor(Date.now() / 1000);
      const unsigned = `${base64url({ alg: 'RS256', typ: 'JWT', kid: sa.private_key_id })}.${base64url({ iss: sa.client_email, scope: SCOPE, aud: tokenUri, iat, exp: iat + 3600 })}`;
      const assertion = `${unsigned}.${sign('RSA-SHA256', Buffer.from(unsigned), key).toString('base64url')}`;
      const form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion });
      const answer = await post(tokenUri, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString(), agent);
      const json = parseJson(answer.body);
      if (answer.status !== 200 || typeof json?.access_token !== 'string') {
        throw new Error(`Google OAuth refused the service account: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
      }
      return { access_token: json.access_token, expires_in: typeof json.expires_in === 'number' ? json.expires_in : 3600 };
    },
  };
}

export function fcmClient(app: string, config: FcmConfig, endpoints: Endpoints): VendorClient {
  const agent = vendorAgent({
    maxSockets: CONNECTIONS_PER_HOST,
    ...(endpoints.fcmOrigin !== '' && { origin: endpoints.fcmOrigin }),
    ...(endpoints.ca !== undefined && { ca: endpoints.ca }),
  });
  const sa = config.serviceAccount;
  const firebase = initializeApp(
    {
      credential: serviceAccountCredential(sa, agent),
      httpAgent: agent,
      projectId: sa.project_id,
    },
    `mps-${app}-${randomUUID()}`,
  );
  const messaging = getMessaging(firebase);
  messaging.enableLegacyHttpTransport();

  return {
    async send(message, tokens) {
      const results: SendResult[] = [];
      for (let i = 0; i < tokens.length; i += CHUNK) {
        const chunk = tokens.slice(i, i + CHUNK);
        try {
          const batch = await messaging.sendEach(chunk.map((token) => fcmMessageOf(message, token)));
          for (const r of batch.responses) results.push(r.success ? { status: 'sent' } : fcmResultOf(r.error as FcmError | undefined));
        } catch (error) {
          const result = fcmResultOf(error as FcmError);
          for (const _ of chunk) results.push(result);
        }
      }
      return results;
    },
    async close() {
      await deleteApp(firebase);
      agent.destroy();
    },
  };
}
