/**
 * Xiaomi MiPush over its REST API: POST /v3/message/regid, form-encoded, `Authorization: key=<secret>`
 * (a static secret: no token exchange). One request per message carries all its regids.
 */
import { createHash } from 'node:crypto';
import type { XiaomiConfig } from '@mps/shared';
import { vendorAgent } from '../http.js';
import { parseJson, post } from './request.js';
import { chunkedClient, CONNECTIONS_PER_HOST, failAll, messageData, retryAfterMs, secondsLeft, type Endpoints, type OutgoingMessage, type SendResult, type VendorClient } from './types.js';

const CHUNK = 1000;
const NO_VALID_TARGETS = 20301;
const RETRY_CODES = new Set([10001, 10002, 10003, 10009, 10010, 10011, 26003, 65029]);
/** Rate limits, retried with backoff (10034, the daily quota, is not: it fails). */
const RATE_CODES = new Set([10022, 10023, 10027, 10028, 26004]);

/** The same message id gives the same notify_id, so a resend replaces rather than adds a notification. */
function notifyId(id: string): string {
  return String(createHash('sha256').update(id).digest().readUInt32BE(0) & 0x7fffffff);
}

export function xiaomiFormOf(message: OutgoingMessage, config: XiaomiConfig, tokens: string[]): URLSearchParams {
  const options = message.options.android ?? {};
  const silent = message.pushType === 'silent';
  const form = new URLSearchParams({
    registration_id: tokens.join(','),
    restricted_package_name: config.packageName,
    pass_through: silent ? '1' : '0',
    payload: JSON.stringify(messageData(message)),
    time_to_live: String(secondsLeft(message) * 1000),
    notify_id: notifyId(message.id),
  });
  if (!silent) {
    // MiPush requires both: a notification with one of them shows it in both places.
    const { title, body } = message.content;
    form.set('title', title ?? body ?? '');
    form.set('description', body ?? title ?? '');
    form.set('notify_type', '-1');
    if (options.channelId !== undefined) form.set('extra.channel_id', options.channelId);
  }
  return form;
}

export function xiaomiClient(_app: string, config: XiaomiConfig, endpoints: Endpoints): VendorClient {
  const agent = vendorAgent({ maxSockets: CONNECTIONS_PER_HOST, ...(endpoints.ca !== undefined && { ca: endpoints.ca }) });
  const url = `${endpoints.xiaomiOrigin}/v3/message/regid`;
  const headers = { authorization: `key=${config.appSecret}`, 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' };

  async function sendChunk(message: OutgoingMessage, tokens: string[]): Promise<SendResult[]> {
    let answer;
    try {
      answer = await post(url, headers, xiaomiFormOf(message, config, tokens).toString(), agent);
    } catch (error) {
      return failAll(tokens, { status: 'retry', reason: (error as Error).message });
    }
    if (answer.status === 429 || answer.status >= 500) {
      const after = retryAfterMs(answer.headers['retry-after']);
      return failAll(tokens, { status: 'retry', reason: `HTTP ${answer.status}`, ...(after !== undefined && { retryAfterMs: after }) });
    }
    // Any other status but 200 will not change by asking again.
    if (answer.status !== 200) return failAll(tokens, { status: 'failed', reason: `HTTP ${answer.status} ${answer.body.slice(0, 200)}`.trim() });
    const json = parseJson(answer.body);
    // The official SDK retries an answer without a body too.
    if (json === undefined) return failAll(tokens, { status: 'retry', reason: 'HTTP 200 without a JSON body' });
    const code = Number(json.code);
    const reason = `${code} ${String(json.reason ?? json.description ?? '')}`.trim().slice(0, 300);
    if (code === 0) return failAll(tokens, { status: 'sent' });
    if (code === NO_VALID_TARGETS) return failAll(tokens, { status: 'invalid-token', reason });
    if (RATE_CODES.has(code) || RETRY_CODES.has(code)) return failAll(tokens, { status: 'retry', reason });
    return failAll(tokens, { status: 'failed', reason });
  }

  return chunkedClient(CHUNK, sendChunk, agent);
}
