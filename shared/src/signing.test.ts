import { generateKeyPairSync, createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalQuery, canonicalString, hmacSignature, hmacVerify, signRequest, verifyRequest, type SignedParts } from './signing.js';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const parts: SignedParts = {
  method: 'post',
  path: '/v1/push/simple',
  query: 'z=1&a=b c',
  timestamp: '1700000000000',
  nonce: 'n0nce_abcdefghijk',
  body: '{"device":"dev-1","title":"Olá"}',
};
const secret = 'key-secret-0123456789';

/** The documented formula, spelled out without the module's help. */
function expectedSignature(key: string, lines: string[]): string {
  return createHmac('sha256', key).update(lines.join('\n')).digest('base64');
}
const sha256Hex = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

describe('canonicalQuery', () => {
  it.each([
    ['', ''],
    ['b=2&a=1&c=3', 'a=1&b=2&c=3'],
    ['a=2&a=10&a=1', 'a=1&a=10&a=2'],
    ['b=1&a=2&b=0', 'a=2&b=0&b=1'],
    ['a=1&B=2', 'B=2&a=1'],
    ["q=it's (fun)*!", 'q=it%27s%20%28fun%29%2A%21'],
    ['q=a+b', 'q=a%20b'],
    ['q=a%20b', 'q=a%20b'],
    ['q=1%2B1', 'q=1%2B1'],
    ['path=%2fa%2fb', 'path=%2Fa%2Fb'],
    ['keep=~._-AZaz09', 'keep=~._-AZaz09'],
    ['name=José', 'name=Jos%C3%A9'],
    ['name=Jos%C3%A9', 'name=Jos%C3%A9'],
    ['flag', 'flag='],
    ['my key=1', 'my%20key=1'],
    // Sorted by the encoded name: '%' sorts before every letter.
    ['bA=2&b[]=1', 'b%5B%5D=1&bA=2'],
  ])('canonicalizes %j as %j', (query, expected) => {
    expect(canonicalQuery(query)).toBe(expected);
  });

  it('does not depend on the order the parameters were sent in', () => {
    expect(canonicalQuery('limit=10&cursor=abc&app=a1')).toBe(canonicalQuery('app=a1&limit=10&cursor=abc'));
  });
});

describe('canonicalString', () => {
  it('is six lines: METHOD, path, canonical query, timestamp, nonce, hex sha256 of the body', () => {
    expect(canonicalString(parts)).toBe(
      [
        'POST',
        '/v1/push/simple',
        'a=b%20c&z=1',
        '1700000000000',
        'n0nce_abcdefghijk',
        sha256Hex('{"device":"dev-1","title":"Olá"}'),
      ].join('\n'),
    );
  });

  it('hashes an empty body to the sha256 of nothing', () => {
    const lines = canonicalString({ ...parts, method: 'GET', query: '', body: '' }).split('\n');
    expect(lines).toEqual(['GET', '/v1/push/simple', '', '1700000000000', 'n0nce_abcdefghijk', EMPTY_SHA256]);
  });

  it('hashes a body given as bytes like the same body given as text', () => {
    const asBytes = { ...parts, body: new TextEncoder().encode(parts.body as string) };
    expect(canonicalString(asBytes)).toBe(canonicalString(parts));
  });
});

describe('hmacSignature', () => {
  it('is base64(HMAC-SHA256(secret, canonical string))', () => {
    const lines = ['POST', '/v1/push/simple', 'a=b%20c&z=1', '1700000000000', 'n0nce_abcdefghijk', sha256Hex(parts.body)];
    expect(hmacSignature(secret, parts)).toBe(expectedSignature(secret, lines));
  });

  it('signs an empty GET', () => {
    const get: SignedParts = { method: 'GET', path: '/v1/messages/m1', query: '', timestamp: '1', nonce: 'abcdefghijklmnop', body: '' };
    const lines = ['GET', '/v1/messages/m1', '', '1', 'abcdefghijklmnop', EMPTY_SHA256];
    expect(hmacSignature('s', get)).toBe(expectedSignature('s', lines));
  });
});

describe('hmacVerify', () => {
  const signature = hmacSignature(secret, parts);

  it('accepts the right signature', () => {
    expect(hmacVerify(secret, parts, signature)).toBe(true);
  });

  it('accepts the same request with its query reordered and its method in another case', () => {
    expect(hmacVerify(secret, { ...parts, method: 'POST', query: 'a=b%20c&z=1' }, signature)).toBe(true);
  });

  it.each<[string, SignedParts]>([
    ['method', { ...parts, method: 'PUT' }],
    ['path', { ...parts, path: '/v1/push/simple/' }],
    ['query', { ...parts, query: 'z=2&a=b c' }],
    ['query, one parameter dropped', { ...parts, query: 'a=b c' }],
    ['timestamp', { ...parts, timestamp: '1700000000001' }],
    ['nonce', { ...parts, nonce: 'n0nce_abcdefghijK' }],
    ['body', { ...parts, body: '{"device":"dev-2","title":"Olá"}' }],
    ['body, emptied', { ...parts, body: '' }],
  ])('refuses the signature when the %s changed', (_, changed) => {
    expect(hmacVerify(secret, changed, signature)).toBe(false);
  });

  it('refuses the signature under another secret', () => {
    expect(hmacVerify('key-secret-0123456788', parts, signature)).toBe(false);
  });

  it.each([
    ['empty', ''],
    ['not base64', 'not a signature!'],
    ['with trailing garbage', `${signature}!!`],
    ['with a character inserted', `${signature.slice(0, 10)}*${signature.slice(10)}`],
    ['with data after the padding', `${signature}AAAA`],
    ['with leading whitespace', ` ${signature}`],
    ['without its padding', signature.replace(/=+$/, '')],
    ['in the base64url alphabet', Buffer.from(signature, 'base64').toString('base64url')],
  ])('returns false, not a throw, for a malformed signature: %s', (_, malformed) => {
    expect(hmacVerify(secret, parts, malformed)).toBe(false);
  });

  it.each([
    ['truncated', signature.slice(0, 20)],
    ['16 bytes', Buffer.alloc(16, 7).toString('base64')],
    ['33 bytes', Buffer.concat([Buffer.from(signature, 'base64'), Buffer.from([0])]).toString('base64')],
    ['32 zero bytes', Buffer.alloc(32).toString('base64')],
  ])('returns false for a well-formed signature of the wrong value or length: %s', (_, wrong) => {
    expect(hmacVerify(secret, parts, wrong)).toBe(false);
  });
});

describe('signRequest / verifyRequest with uploaded public keys', () => {
  for (const kind of ['rsa', 'ed25519'] as const) {
    const pair = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
    const other = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');

    it(`verifies a ${kind} signature with the public key and refuses changes`, () => {
      const signature = signRequest({ kind, privateKey: pair.privateKey }, parts);
      expect(verifyRequest({ kind, publicKey: pair.publicKey }, parts, signature)).toBe(true);
      expect(verifyRequest({ kind, publicKey: pair.publicKey }, { ...parts, body: '{"x":2}' }, signature)).toBe(false);
      expect(verifyRequest({ kind, publicKey: other.publicKey }, parts, signature)).toBe(false);
      expect(verifyRequest({ kind, publicKey: pair.publicKey }, parts, `${signature}!`)).toBe(false);
      expect(verifyRequest({ kind, publicKey: pair.publicKey }, parts, '')).toBe(false);
    });
  }

  it('routes an HMAC key to the HMAC formula', () => {
    expect(signRequest({ kind: 'hmac', secret }, parts)).toBe(hmacSignature(secret, parts));
    expect(verifyRequest({ kind: 'hmac', secret }, parts, hmacSignature(secret, parts))).toBe(true);
  });
});
