/**
 * Device tokens: JWTs (HS256) that a business server signs with one of its app's API keys
 * (the key id in the `kid` header), so a device can prove what the business server vouches for:
 *   - connect tokens (aud "mps:connect", sub = device id): authenticate without the device secret;
 *   - bind tokens (aud "mps:bind", sub = user id, optional `dev` = device id): bind a device to a user.
 * Any JWT library can make them; the server SDK has signDeviceToken.
 */
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from 'jose';

export const TokenAudience = { CONNECT: 'mps:connect', BIND: 'mps:bind' } as const;
export type TokenAudience = (typeof TokenAudience)[keyof typeof TokenAudience];

export interface DeviceTokenInput {
  keyId: string;
  secret: string;
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

const key = (secret: string) => new TextEncoder().encode(secret);

export async function signDeviceToken(input: DeviceTokenInput): Promise<string> {
  return new SignJWT(input.device !== undefined ? { dev: input.device } : {})
    .setProtectedHeader({ alg: 'HS256', kid: input.keyId })
    .setAudience(input.audience)
    .setSubject(input.subject)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + input.ttlS)
    .sign(key(input.secret));
}

/** The key id a token claims to be signed with (not yet verified). */
export function tokenKeyId(token: string): string {
  try {
    const { kid, alg } = decodeProtectedHeader(token);
    if (alg !== 'HS256' || typeof kid !== 'string') throw new TokenError('invalid', 'token header must name alg HS256 and a kid');
    return kid;
  } catch (cause) {
    if (cause instanceof TokenError) throw cause;
    throw new TokenError('invalid', 'token is not a JWT', { cause });
  }
}

export interface VerifiedToken {
  subject: string;
  device: string | undefined;
}

export async function verifyDeviceToken(token: string, secret: string, audience: TokenAudience): Promise<VerifiedToken> {
  try {
    const { payload } = await jwtVerify(token, key(secret), { audience, algorithms: ['HS256'], requiredClaims: ['sub', 'exp'] });
    return { subject: payload.sub as string, device: typeof payload.dev === 'string' ? payload.dev : undefined };
  } catch (cause) {
    if (cause instanceof errors.JWTExpired) throw new TokenError('expired', 'token has expired', { cause });
    throw new TokenError('invalid', 'token is not valid', { cause });
  }
}
