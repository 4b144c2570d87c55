import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { issuedAfterRevocation, signDeviceToken, tokenIssuedAt, TokenAudience, verifyDeviceToken } from './tokens.js';

const key = { kind: 'hmac', secret: 'a-test-secret-of-enough-length-0123456789' } as const;
const material = new TextEncoder().encode(key.secret);

describe('connect tokens and revocation', () => {
  it('carries the issue time, which verification and tokenIssuedAt both read', async () => {
    const before = Math.floor(Date.now() / 1000);
    const token = await signDeviceToken({ keyId: 'key_x', key, audience: TokenAudience.CONNECT, subject: 'dev', ttlS: 60 });
    const verified = await verifyDeviceToken(token, key, TokenAudience.CONNECT);
    expect(verified.issuedAt).toBeGreaterThanOrEqual(before);
    expect(verified.issuedAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(tokenIssuedAt(token)).toBe(verified.issuedAt);
  });

  it('has no issue time for a token signed without iat', async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: 'key_x' })
      .setAudience(TokenAudience.CONNECT)
      .setSubject('dev')
      .setExpirationTime('1m')
      .sign(material);
    expect((await verifyDeviceToken(token, key, TokenAudience.CONNECT)).issuedAt).toBeUndefined();
    expect(tokenIssuedAt(token)).toBeUndefined();
  });

  it('lets only a token of a later second than the revocation outlive it', () => {
    const revokedAt = Date.parse('2026-11-14T22:20:00.400Z');
    const second = Math.floor(revokedAt / 1000);
    expect(issuedAfterRevocation(second - 1, revokedAt)).toBe(false);
    // Same second: it may have been signed before the revocation.
    expect(issuedAfterRevocation(second, revokedAt)).toBe(false);
    expect(issuedAfterRevocation(second + 1, revokedAt)).toBe(true);
    expect(issuedAfterRevocation(undefined, revokedAt)).toBe(false);
    expect(issuedAfterRevocation(second, second * 1000)).toBe(false);
  });
});
