/**
 * docs/signing-vectors.json and the worked example of docs/api.md, checked against the signing code,
 * so that neither document can drift from it. After a deliberate change to the signing scheme,
 * update the hand-written expectations and regenerate:
 *   node --conditions=source --import tsx docs/signing-vectors.generate.ts
 */
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  canonicalQuery,
  canonicalString,
  CLOCK_SKEW_MS,
  NONCE_PATTERN,
  receiptSignature,
  SignatureHeader,
  signRequest,
  verifyReceipt,
  verifyRequest,
  type SignedParts,
  type SigningKey,
  type VerifyingKey,
} from './signing.js';

type KeyName = 'hmac' | 'ed25519' | 'rsa';
type KeyVector = { id: string; kind: 'hmac'; secret: string } | { id: string; kind: 'rsa' | 'ed25519'; privateKeyPem: string; publicKeyPem: string };

interface RequestVector {
  name: string;
  key: KeyName;
  method: string;
  url: string;
  path: string;
  query: string;
  timestamp: string;
  nonce: string;
  body: string;
  bodyBytes: number;
  bodySha256: string;
  canonicalQuery: string;
  canonicalString: string;
  signature: string;
  headers: Record<string, string>;
}

interface Vectors {
  headers: Record<string, string>;
  clockSkewMs: number;
  noncePattern: string;
  keys: Record<KeyName, KeyVector>;
  queries: { query: string; canonical: string }[];
  requests: RequestVector[];
  refused: { request: string; why: string; signature: string }[];
  receipts: {
    name: string;
    key: 'hmac';
    timestamp: string;
    body: string;
    signedString: string;
    signature: string;
    headers: Record<string, string>;
    checks: { now: number; valid: boolean }[];
  }[];
}

const docs = new URL('../../docs/', import.meta.url);
const vectors = JSON.parse(readFileSync(new URL('signing-vectors.json', docs), 'utf8')) as Vectors;
const apiMd = readFileSync(new URL('api.md', docs), 'utf8');

const signingKey = (name: KeyName): SigningKey => {
  const key = vectors.keys[name];
  return key.kind === 'hmac' ? { kind: 'hmac', secret: key.secret } : { kind: key.kind, privateKey: createPrivateKey(key.privateKeyPem) };
};
const verifyingKey = (name: KeyName): VerifyingKey => {
  const key = vectors.keys[name];
  return key.kind === 'hmac' ? { kind: 'hmac', secret: key.secret } : { kind: key.kind, publicKey: createPublicKey(key.publicKeyPem) };
};
const partsOf = (v: RequestVector): SignedParts => ({ method: v.method, path: v.path, query: v.query, timestamp: v.timestamp, nonce: v.nonce, body: v.body });
const hmacSecret = (): string => {
  const key = vectors.keys.hmac;
  if (key.kind !== 'hmac') throw new Error('keys.hmac is not an HMAC key');
  return key.secret;
};

describe('signing vectors', () => {
  it('carry the constants of the code', () => {
    expect(vectors.headers).toEqual(SignatureHeader);
    expect(vectors.clockSkewMs).toBe(CLOCK_SKEW_MS);
    expect(vectors.noncePattern).toBe(NONCE_PATTERN.source);
  });

  it('cover every key kind, bodies and queries that need care', () => {
    const kinds = new Set(vectors.requests.map((v) => vectors.keys[v.key].kind));
    expect([...kinds].sort()).toEqual(['ed25519', 'hmac', 'rsa']);
    expect(vectors.requests.some((v) => v.method === 'GET' && v.body === '' && v.query === '')).toBe(true);
    expect(vectors.requests.some((v) => v.method === 'POST' && v.body === '')).toBe(true);
    expect(vectors.requests.some((v) => v.bodyBytes > v.body.length)).toBe(true);
    expect(vectors.requests.some((v) => v.query !== '' && v.canonicalQuery !== v.query)).toBe(true);
    expect(vectors.receipts.length).toBeGreaterThan(0);
  });

  it('derive each public key from its private key', () => {
    for (const key of Object.values(vectors.keys)) {
      if (key.kind === 'hmac') continue;
      expect(createPublicKey(key.privateKeyPem).export({ type: 'spki', format: 'pem' })).toBe(key.publicKeyPem);
    }
  });

  it.each(vectors.queries)('canonicalQuery($query) is $canonical', ({ query, canonical }) => {
    expect(canonicalQuery(query)).toBe(canonical);
  });

  describe.each(vectors.requests)('request $name', (v) => {
    it('is consistent in itself', () => {
      expect(v.url).toBe(v.query === '' ? v.path : `${v.path}?${v.query}`);
      expect(v.nonce).toMatch(NONCE_PATTERN);
      expect(v.bodyBytes).toBe(Buffer.byteLength(v.body, 'utf8'));
      expect(createHash('sha256').update(v.body, 'utf8').digest('hex')).toBe(v.bodySha256);
      expect(v.canonicalString.split('\n')).toEqual([v.method, v.path, v.canonicalQuery, v.timestamp, v.nonce, v.bodySha256]);
      expect(v.headers).toMatchObject({
        [SignatureHeader.KEY]: vectors.keys[v.key].id,
        [SignatureHeader.TIMESTAMP]: v.timestamp,
        [SignatureHeader.NONCE]: v.nonce,
        [SignatureHeader.SIGNATURE]: v.signature,
      });
    });

    it('has the canonical query and canonical string of the code', () => {
      expect(canonicalQuery(v.query)).toBe(v.canonicalQuery);
      expect(canonicalString(partsOf(v))).toBe(v.canonicalString);
    });

    it('has the signature of the code, which verifies', () => {
      expect(signRequest(signingKey(v.key), partsOf(v))).toBe(v.signature);
      expect(verifyRequest(verifyingKey(v.key), partsOf(v), v.signature)).toBe(true);
    });

    it('does not verify once the body or the nonce changed', () => {
      expect(verifyRequest(verifyingKey(v.key), { ...partsOf(v), body: `${v.body} ` }, v.signature)).toBe(false);
      expect(verifyRequest(verifyingKey(v.key), { ...partsOf(v), nonce: `${v.nonce}0` }, v.signature)).toBe(false);
    });
  });

  it.each(vectors.refused)('refuses the signature of $request spelled with $why', ({ request, signature }) => {
    const v = vectors.requests.find((r) => r.name === request);
    if (!v) throw new Error(`no request vector ${request}`);
    expect(verifyRequest(verifyingKey(v.key), partsOf(v), signature)).toBe(false);
  });

  describe.each(vectors.receipts)('receipt $name', (v) => {
    it('is signed over TIMESTAMP \\n BODY, as the code signs it', () => {
      expect(v.signedString).toBe(`${v.timestamp}\n${v.body}`);
      expect(receiptSignature(hmacSecret(), v.timestamp, v.body)).toBe(v.signature);
      expect(v.headers).toMatchObject({ [SignatureHeader.KEY]: vectors.keys.hmac.id, [SignatureHeader.TIMESTAMP]: v.timestamp, [SignatureHeader.SIGNATURE]: v.signature });
    });

    it.each(v.checks)('verifyReceipt at $now is $valid', ({ now, valid }) => {
      expect(verifyReceipt(hmacSecret(), { timestamp: v.timestamp, signature: v.signature }, v.body, now)).toBe(valid);
    });

    it('is refused for a changed body', () => {
      expect(verifyReceipt(hmacSecret(), { timestamp: v.timestamp, signature: v.signature }, v.body.replace('"app"', '"app" '), Number(v.timestamp))).toBe(false);
    });
  });
});

describe('docs/api.md worked example', () => {
  const example = vectors.requests[0] as RequestVector;
  /** A readable failure: the missing text, not the whole document. */
  const expectInApiMd = (text: string | undefined) => expect(text !== undefined && apiMd.includes(text), `docs/api.md shows ${JSON.stringify(text)}`).toBe(true);

  it('is the first request vector, an HMAC push', () => {
    expect(example.name).toBe('push-simple-hmac');
    expect(vectors.keys[example.key].kind).toBe('hmac');
  });

  it('shows the vector: secret, headers, body, body hash, canonical string and signature', () => {
    expectInApiMd(hmacSecret());
    expectInApiMd(example.body);
    expectInApiMd(example.bodySha256);
    expectInApiMd(example.canonicalString);
    for (const [name, value] of Object.entries(example.headers)) expectInApiMd(`${name}: ${value}`);
  });

  it('shows the receipt example of the vectors', () => {
    const receipt = vectors.receipts[0];
    expectInApiMd(receipt?.body);
    expectInApiMd(`x-mps-timestamp: ${receipt?.timestamp}`);
    expectInApiMd(`x-mps-signature: ${receipt?.signature}`);
  });
});
