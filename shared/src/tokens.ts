/**
 * Device tokens: JWTs that a business server signs with one of its app's API keys (HS256 with an
 * HMAC key, RS256 with an RSA key, EdDSA with an Ed25519 key)
 * (the key id in the `kid` header), so a device can prove what the business server vouches for:
 *   - connect tokens (aud "mps:connect", sub = device id): authenticate without the device secret;
 *   - bind tokens (aud "mps:bind", sub = user id, optional `dev` = device id): bind a device to a user.
 * Any JWT library can make them; the server SDK has signDeviceToken.
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { SigningKey, VerifyingKey } from './signing.js';

export const TokenAudience = { CONNECT: 'mps:connect', BIND: 'mps:bind' } as const;
export type TokenAudience = (typeof TokenAudience)[keyof typeof TokenAudience];

export interface DeviceTokenInput {
  keyId: string;
  key: SigningKey;
  audience: TokenAudience;
  /** The device id (connect) or the user id (bind). */
  subject: string;
  /** Only this device may use a bind token (optional). */
  device?: string;
  ttlS: number;
}

export class TokenError extends Error {
  constructor(
    readonly reason: 'expired' | 'invalid',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TokenError';
  }
}

const ALG = { hmac: 'HS256', rsa: 'RS256', ed25519: 'EdDSA' } as const;
const ALGS: readonly string[] = Object.values(ALG);

const signingMaterial = (key: SigningKey) => (key.kind === 'hmac' ? new TextEncoder().encode(key.secret) : key.privateKey);
const verifyingMaterial = (key: VerifyingKey) => (key.kind === 'hmac' ? new TextEncoder().encode(key.secret) : key.publicKey);

export async function signDeviceToken(input: DeviceTokenInput): Promise<string> {
  return new SignJWT(input.device !== undefined ? { dev: input.device } : {})
    .setProtectedHeader({ alg: ALG[input.key.kind], kid: input.keyId })
    .setAudience(input.audience)
    .setSubject(input.subject)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + input.ttlS)
    .sign(signingMaterial(input.key));
}

/** The key id a token claims to be signed with (not yet verified). */
export function tokenKeyId(token: string): string {
  try {
    const { kid, alg } = decodeProtectedHeader(token);
    if (!ALGS.includes(alg ?? '') || typeof kid !== 'string') throw new TokenError('invalid', 'token header must name a supported alg and a kid');
    return kid;
  } catch (cause) {
    if (cause instanceof TokenError) throw cause;
    throw new TokenError('invalid', 'token is not a JWT', { cause });
  }
}

export interface VerifiedToken {
  subject: string;
  device: string | undefined;
  /** The `iat` claim (seconds since the epoch), if the token has one. */
  issuedAt: number | undefined;
}

const issuedAtOf = ({ iat }: JWTPayload): number | undefined => (typeof iat === 'number' && Number.isFinite(iat) ? iat : undefined);

/** Verifies with the key the token names; only that key's algorithm is accepted. */
export async function verifyDeviceToken(token: string, key: VerifyingKey, audience: TokenAudience): Promise<VerifiedToken> {
  try {
    const { payload } = await jwtVerify(token, verifyingMaterial(key), {
      audience,
      algorithms: [ALG[key.kind]],
      requiredClaims: ['sub', 'exp'],
    });
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new TokenError('invalid', 'token subject must be a non-empty string');
    return {
      subject: payload.sub,
      device: typeof payload.dev === 'string' ? payload.dev : undefined,
      issuedAt: issuedAtOf(payload),
    };
  } catch (cause) {
    if (cause instanceof TokenError) throw cause;
    if (cause instanceof errors.JWTExpired) throw new TokenError('expired', 'token has expired', { cause });
    throw new TokenError('invalid', 'token is not valid', { cause });
  }
}

/** The `iat` claim (s) of a token whose signature was already verified (undefined: none). */
export function tokenIssuedAt(token: string): number | undefined {
  return issuedAtOf(decodeJwt(token));
}

/**
 * Whether a connect token still vouches for a device whose credentials were revoked at
 * `revokedAtMs`: only one issued after that second does (`iat` has whole seconds, so a token of the
 * same second may predate the revocation); one without `iat` cannot show it does.
 */
export function issuedAfterRevocation(issuedAtS: number | undefined, revokedAtMs: number): boolean {
  return issuedAtS !== undefined && issuedAtS * 1000 > revokedAtMs;
}
