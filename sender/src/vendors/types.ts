/**
 * What every vendor client takes and gives back. A client turns one message for many device tokens
 * into its vendor's requests and reports one result per token.
 */
import type { ChannelConfigs, MessageContent, PushType, Vendor, VendorOptions } from '@mps/shared';

export interface OutgoingMessage {
  id: string;
  pushType: PushType;
  content: MessageContent;
  expiresAt: Date;
  options: VendorOptions;
}

export type SendResult =
  | { status: 'sent' }
  /**
   * The vendor says the token is dead: it is not used again until the device reports a token again.
   * `since`: when the vendor last found it invalid, if it says (APNs' 410 timestamp); a token the
   * device registered after that moment is kept.
   */
  | { status: 'invalid-token'; reason: string; since?: Date }
  /** Try again later (rate limit, vendor unavailable, network): after retryAfterMs when the vendor said. */
  | { status: 'retry'; reason: string; retryAfterMs?: number }
  /** Will not succeed by retrying (bad credentials, payload refused). */
  | { status: 'failed'; reason: string };

export interface VendorClient {
  /** One result per token, in the tokens' order. Never throws for a vendor or network error. */
  send(message: OutgoingMessage, tokens: string[]): Promise<SendResult[]>;
  close(): Promise<void>;
}

/** Where a client connects and whom it trusts beyond the system roots. */
export interface Endpoints {
  apnsOrigin: string;
  fcmOrigin: string;
  huaweiOAuthUrl: string;
  huaweiPushOrigin: string;
  xiaomiOrigin: string;
  ca: string | undefined;
}

export type ClientFactory<V extends Vendor> = (app: string, config: ChannelConfigs[V], endpoints: Endpoints) => VendorClient;

/** Custom data every vendor carries, so the SDK can report the message by the same id. */
export function messageData(message: OutgoingMessage): Record<string, string> {
  const { payload, extras } = message.content;
  return {
    ...extras,
    mps_id: message.id,
    ...(payload !== undefined && { mps_payload: JSON.stringify(payload) }),
  };
}

/** Seconds left in the validity period (at least 1: an expired message is never handed to a client). */
export function secondsLeft(message: OutgoingMessage): number {
  return Math.max(1, Math.floor((message.expiresAt.getTime() - Date.now()) / 1000));
}

/**
 * Connections per vendor host of one app's HTTP/1.1 client (FCM, Huawei, Xiaomi); requests beyond
 * wait in the agent. Without a bound, a broadcast page or a full batch opens one TLS connection per
 * request in flight. 100 is the concurrency firebase-admin's own HTTP/2 transport asks for.
 */
export const CONNECTIONS_PER_HOST = 100;

export const failAll = (tokens: string[], result: SendResult): SendResult[] => tokens.map(() => result);

/** A client over an HTTPS agent whose requests carry at most `chunk` tokens each, made one after another. */
export function chunkedClient(
  chunk: number,
  sendChunk: (message: OutgoingMessage, tokens: string[]) => Promise<SendResult[]>,
  agent: { destroy(): void },
): VendorClient {
  return {
    async send(message, tokens) {
      const results: SendResult[] = [];
      for (let i = 0; i < tokens.length; i += chunk) results.push(...(await sendChunk(message, tokens.slice(i, i + chunk))));
      return results;
    },
    async close() {
      agent.destroy();
    },
  };
}

/** A Retry-After header (seconds or an HTTP date) in ms. */
export function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
