/**
 * WebSocket close codes the gateway uses, one table for the gateway, the SDK and the docs.
 * `retry` tells a client whether reconnecting with the same credentials can succeed.
 */
export const CloseCode = {
  /** The payload was not valid msgpack. */
  BAD_FRAME: { code: 4000, reason: 'bad_frame', retry: false },
  /** The frame's type is not one this protocol version knows. */
  UNKNOWN_FRAME: { code: 4001, reason: 'unknown_frame', retry: false },
  /** The frame's fields did not match its schema. */
  INVALID_FRAME: { code: 4002, reason: 'invalid_frame', retry: false },
  /** A frame larger than the gateway accepts. */
  FRAME_TOO_LARGE: { code: 4003, reason: 'frame_too_large', retry: false },
  /** A frame other than auth/register arrived before authentication. */
  NOT_AUTHENTICATED: { code: 4004, reason: 'not_authenticated', retry: true },
  /** No auth/register frame within the auth timeout. */
  AUTH_TIMEOUT: { code: 4005, reason: 'auth_timeout', retry: true },
  /** Unknown app, unknown device or wrong secret. */
  AUTH_FAILED: { code: 4006, reason: 'auth_failed', retry: false },
  /** The connection token has expired; get a new one from the business server. */
  TOKEN_EXPIRED: { code: 4007, reason: 'token_expired', retry: false },
  /** Too many frames per second. */
  RATE_LIMITED: { code: 4008, reason: 'rate_limited', retry: true },
  /** The gateway is draining: reconnect (to any gateway) after the delay it announced. */
  GOING_AWAY: { code: 4009, reason: 'going_away', retry: true },
  /** The client speaks a protocol version this gateway does not. */
  UNSUPPORTED_VERSION: { code: 4010, reason: 'unsupported_version', retry: false },
  /** The client could not keep up: too much unsent data queued for it. */
  BACKPRESSURE: { code: 4011, reason: 'backpressure', retry: true },
  /** The same device connected again; this older connection is closed. */
  REPLACED: { code: 4012, reason: 'replaced', retry: false },
  /** The gateway failed while handling the connection; reconnect with backoff. */
  INTERNAL: { code: 4013, reason: 'internal', retry: true },
  /** A bind token that is forged, expired, for another app or for another device. */
  BIND_REJECTED: { code: 4014, reason: 'bind_rejected', retry: true },
  /** The app does not let devices do this (e.g. set their own tags). */
  FORBIDDEN: { code: 4015, reason: 'forbidden', retry: true },
  /** This IP address holds as many connections as the gateway allows. */
  TOO_MANY_CONNECTIONS: { code: 4016, reason: 'too_many_connections', retry: true },
  /** The business server revoked the device's credentials (POST /v1/devices/{id}/revoke). */
  REVOKED: { code: 4017, reason: 'revoked', retry: false },
} as const;

export type CloseCodeName = keyof typeof CloseCode;
export type CloseInfo = (typeof CloseCode)[CloseCodeName];

const byNumber = new Map<number, CloseInfo>(Object.values(CloseCode).map((c) => [c.code, c]));

export function closeInfo(code: number): CloseInfo | undefined {
  return byNumber.get(code);
}
