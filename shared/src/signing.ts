/**
 * Request signing for the /v1 API, shared by the control plane (verifies) and the server SDK (signs).
 * docs/api.md describes the scheme step by step.
 *
 *   canonical = METHOD \n PATH \n CANONICAL_QUERY \n TIMESTAMP \n NONCE \n hex(sha256(body))
 *   signature = base64(HMAC-SHA256(secret, canonical))            for an HMAC key
 *             = base64(RSASSA-PKCS1-v1_5 SHA-256(private, canonical))  for an RSA key (SHA256withRSA)
 *             = base64(Ed25519(private, canonical))                 for an Ed25519 key
 */
import { createHash, createHmac, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';

export const SignatureHeader = {
  KEY: 'x-mps-key',
  TIMESTAMP: 'x-mps-timestamp',
  NONCE: 'x-mps-nonce',
  SIGNATURE: 'x-mps-signature',
} as const;

/** Requests whose timestamp is further than this from the server's clock are refused. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

export interface SignedParts {
  method: string;
  /** The request path as sent, without the query string. */
  path: string;
  /** The raw query string without the leading `?` ('' for none). */
  query: string;
  /** Milliseconds since the epoch, as a decimal string. */
  timestamp: string;
  nonce: string;
  body: Uint8Array | string;
}

const rfc3986 = (value: string): string =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Query parameters decoded, re-encoded per RFC 3986, sorted by name then value, joined with `&`. */
export function canonicalQuery(query: string): string {
  return [...new URLSearchParams(query)]
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

export function canonicalString(parts: SignedParts): string {
  const bodyHash = createHash('sha256').update(parts.body).digest('hex');
  return [parts.method.toUpperCase(), parts.path, canonicalQuery(parts.query), parts.timestamp, parts.nonce, bodyHash].join(
    '\n',
  );
}

export function hmacSignature(secret: string, parts: SignedParts): string {
  return createHmac('sha256', secret).update(canonicalString(parts)).digest('base64');
}

/**
 * Buffer's decoder skips characters outside the alphabet and stops at padding, so many strings
 * decode to the same bytes: accept only the one base64 spelling the formula produces.
 */
function strictBase64(signature: string): Buffer | undefined {
  const bytes = Buffer.from(signature, 'base64');
  return bytes.toString('base64') === signature ? bytes : undefined;
}

export function hmacVerify(secret: string, parts: SignedParts, signature: string): boolean {
  const expected = Buffer.from(hmacSignature(secret, parts), 'base64');
  const given = strictBase64(signature);
  return given !== undefined && given.length === expected.length && timingSafeEqual(given, expected);
}

/** The key material a request is signed with (the business server's side). */
export type SigningKey = { kind: 'hmac'; secret: string } | { kind: 'rsa' | 'ed25519'; privateKey: KeyObject };
/** What the control plane verifies with. */
export type VerifyingKey = { kind: 'hmac'; secret: string } | { kind: 'rsa' | 'ed25519'; publicKey: KeyObject };

export function signRequest(key: SigningKey, parts: SignedParts): string {
  if (key.kind === 'hmac') return hmacSignature(key.secret, parts);
  const data = Buffer.from(canonicalString(parts));
  return sign(key.kind === 'rsa' ? 'sha256' : null, data, key.privateKey).toString('base64');
}

export function verifyRequest(key: VerifyingKey, parts: SignedParts, signature: string): boolean {
  if (key.kind === 'hmac') return hmacVerify(key.secret, parts, signature);
  const given = strictBase64(signature);
  if (given === undefined || given.length === 0) return false;
  return verify(key.kind === 'rsa' ? 'sha256' : null, Buffer.from(canonicalString(parts)), key.publicKey, given);
}

/**
 * Receipt callbacks are signed by the control plane with the app's HMAC key (named in x-mps-key):
 *   signature = base64(HMAC-SHA256(secret, TIMESTAMP \n BODY))
 */
export function receiptSignature(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}\n${body}`).digest('base64');
}

/** For the business server: checks a receipt callback's signature and that it is recent. */
export function verifyReceipt(secret: string, headers: { timestamp: string; signature: string }, body: string, now = Date.now()): boolean {
  if (!/^\d{1,16}$/.test(headers.timestamp) || Math.abs(now - Number(headers.timestamp)) > CLOCK_SKEW_MS) return false;
  const expected = Buffer.from(receiptSignature(secret, headers.timestamp, body), 'base64');
  const given = strictBase64(headers.signature);
  return given !== undefined && given.length === expected.length && timingSafeEqual(given, expected);
}
