/**
 * Huawei Push Kit (HMS Core) over its REST API: an OAuth client-credentials token (cached until a
 * minute before it expires, refreshed once when Huawei calls it expired), then
 * POST /v1/{appId}/messages:send with up to 1,000 tokens per request.
 */
import type { HuaweiConfig } from '@mps/shared';
import { vendorAgent } from '../http.js';
import { parseJson, post, type HttpAnswer } from './request.js';
import { chunkedClient, CONNECTIONS_PER_HOST, failAll, messageData, retryAfterMs, secondsLeft, type Endpoints, type OutgoingMessage, type SendResult, type VendorClient } from './types.js';

const CHUNK = 1000;
const SUCCESS = '80000000';
const PARTIAL = '80100000';
const ALL_TOKENS_INVALID = '80300007';
const AUTH_ERRORS = new Set(['80200001', '80200003']);
const RETRY_CODES = new Set(['81000001', '80600003']);

export function huaweiBodyOf(message: OutgoingMessage, tokens: string[]): object {
  const options = message.options.android ?? {};
  const silent = message.pushType === 'silent';
  const { title, body } = message.content;
  return {
    validate_only: false,
    message: {
      data: JSON.stringify(messageData(message)),
      android: {
        urgency: (options.priority ?? (silent ? 'normal' : 'high')).toUpperCase(),
        ttl: `${secondsLeft(message)}s`,
        ...(options.category !== undefined && { category: options.category }),
        ...(!silent && {
          notification: {
            ...(title !== undefined && { title }),
            body: body ?? '',
            ...(options.channelId !== undefined && { channel_id: options.channelId }),
            ...(options.importance !== undefined && { importance: options.importance.toUpperCase() }),
            // The tag makes a resend replace the first copy on the device.
            tag: message.id,
            // Type 3: open the app (Huawei requires a click action on every notification).
            click_action: { type: 3 },
          },
        }),
      },
      token: tokens,
    },
  };
}

class TokenError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export function huaweiClient(_app: string, config: HuaweiConfig, endpoints: Endpoints): VendorClient {
  const agent = vendorAgent({ maxSockets: CONNECTIONS_PER_HOST, ...(endpoints.ca !== undefined && { ca: endpoints.ca }) });
  const sendUrl = `${endpoints.huaweiPushOrigin}/v1/${config.appId}/messages:send`;
  let cached: { value: string; until: number } | undefined;
  let pending: Promise<string> | undefined;

  async function fetchToken(): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: config.clientId ?? config.appId, client_secret: config.clientSecret });
    const answer = await post(endpoints.huaweiOAuthUrl, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString(), agent);
    const json = parseJson(answer.body);
    if (answer.status !== 200 || typeof json?.access_token !== 'string') {
      throw new TokenError(`OAuth token refused: HTTP ${answer.status} ${answer.body.slice(0, 200)}`, answer.status >= 500);
    }
    const seconds = typeof json.expires_in === 'number' ? json.expires_in : 3600;
    cached = { value: json.access_token, until: Date.now() + Math.max(0, seconds - 60) * 1000 };
    return json.access_token;
  }

  /** One token request at a time, however many sends wait for it. */
  function accessToken(): Promise<string> {
    if (cached && Date.now() < cached.until) return Promise.resolve(cached.value);
    pending ??= fetchToken().finally(() => (pending = undefined));
    return pending;
  }

  async function sendChunk(message: OutgoingMessage, tokens: string[]): Promise<SendResult[]> {
    const body = JSON.stringify(huaweiBodyOf(message, tokens));
    const attempt = async (): Promise<HttpAnswer> =>
      post(sendUrl, { authorization: `Bearer ${await accessToken()}`, 'content-type': 'application/json' }, body, agent);
    let answer: HttpAnswer;
    try {
      answer = await attempt();
      if (AUTH_ERRORS.has(String(parseJson(answer.body)?.code)) || answer.status === 401) {
        cached = undefined;
        answer = await attempt();
      }
    } catch (error) {
      if (error instanceof TokenError && !error.retryable) return failAll(tokens, { status: 'failed', reason: error.message });
      return failAll(tokens, { status: 'retry', reason: (error as Error).message });
    }
    const json = parseJson(answer.body);
    const code = String(json?.code ?? '');
    const reason = `${code || `HTTP ${answer.status}`} ${String(json?.msg ?? '')}`.trim().slice(0, 300);
    // 503 is Huawei's traffic control; 429 is not documented, but says the same.
    if (answer.status === 429 || answer.status >= 500 || RETRY_CODES.has(code)) {
      const after = retryAfterMs(answer.headers['retry-after']);
      return failAll(tokens, { status: 'retry', reason, ...(after !== undefined && { retryAfterMs: after }) });
    }
    if (code === SUCCESS) return failAll(tokens, { status: 'sent' });
    if (code === ALL_TOKENS_INVALID) return failAll(tokens, { status: 'invalid-token', reason });
    if (code === PARTIAL) {
      const detail = parseJson(String(json?.msg ?? ''));
      const illegal = new Set(Array.isArray(detail?.illegal_tokens) ? (detail.illegal_tokens as string[]) : []);
      return tokens.map((t) => (illegal.has(t) ? { status: 'invalid-token', reason: `${PARTIAL} illegal token` } : { status: 'sent' }));
    }
    return failAll(tokens, { status: 'failed', reason });
  }

  return chunkedClient(CHUNK, sendChunk, agent);
}
