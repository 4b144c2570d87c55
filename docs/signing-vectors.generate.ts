/**
 * Writes docs/signing-vectors.json: signed API requests and signed receipt callbacks, computed by the
 * real functions of shared/src/signing.ts. Run from the repo root:
 *
 *   node --conditions=source --import tsx docs/signing-vectors.generate.ts
 *
 * Every canonical query and canonical string below is written out by hand, and every signature is
 * computed twice: by the module, and by node:crypto straight from the hand-written canonical string.
 * Nothing is written unless all of them agree, so a change to the signing code shows up here as a
 * refusal rather than as new vectors. shared/src/signing-vectors.test.ts checks the file against the
 * code again, and checks that the worked example of docs/api.md is the first request below.
 */
import { createHash, createHmac, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
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
} from '@mps/shared';

/**
 * Test keys, published here on purpose: never use them for anything else. The Ed25519 key is the
 * one whose 32-byte seed is sha256("mps signing vectors: ed25519 test key"); the RSA key was
 * generated once (2048 bits, e = 65537).
 */
const KEYS = {
  hmac: { id: 'key_3fJx9QmT7cWv2LpA', kind: 'hmac', secret: 'sK7pQ2vX9mR4tW1yB6nC3hJ8dF5gL0zA2eU7iO4kPqM' },
  ed25519: {
    id: 'key_q7Hn2LwX4cVb9TzR',
    kind: 'ed25519',
    privateKeyPem: `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIIWh3FJUN+aCUx/Dg8QvKeF2mGIHxXsqr3JujpbKkBmC
-----END PRIVATE KEY-----
`,
    publicKeyPem: `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAyKv+LMeb8WTAY9wBOU5Rqyh/jGL8/hYXy8HRdWSiXx4=
-----END PUBLIC KEY-----
`,
  },
  rsa: {
    id: 'key_R5aM8kPe3YuJ6sDf',
    kind: 'rsa',
    privateKeyPem: `-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDAghAMZzzef6XJ
imel9OVOheXOXQtQ6Blv1Kql9y7Zmb00/11G7GA9j6infD89rr0GdckVC6gz0ETL
zfa2Qftz/dYrVGvxX6vA9aVMrR1mTbQ+e/agf8Qa+pj6xZrPuIKNoqaUtO/vv+t2
AU5r4cTXkqXp/JxnIpQFR8sGmQt/Zc6Zm+D3z5+K5G36u7Y0BfZgGD3Fvsfj/giR
SFQov09S0kRj9KGQUbTLsKKEzGYmxPPZJAAhObLBQ7aMDmPiCXXJSdSgOhDJL36A
C89UvAR0k4aAoy7U6HCiKueeYYD+G5rcE8jI1IxQKTlGQZ51avvGOwdYP7KvUpGy
XUZ/hsulAgMBAAECggEAAyogLr6uYXn3tQ3Gu75VhqpCJ4JKt/8YwUiIWvIVSGke
kyB03Wrv/2hn0q5YMSC45Wz06+5Pyt+W7JgWK34qLrNIMgN77XEv1vGIJhqHwTFw
emvPQhQs78SZfzCAZanC0PvmK8ui+2325kRfOvwbIEVo33p87QpvJHxppKd0vkNc
NVPDklMs74Sy9X4SYZvZnbzedN2dJQ4ATr7iAifZ8Ej1gEtSi+zq9sKA4prHzBi0
5VUDLhLNdtHFM/4En97lkqx1XfuIzsjZMNuTcnMiMc/zqJMTXe68sp/Fw2P7nTZ6
D+I128/iOFIx+Q/AZe85FN7NJmuJ3q4l27rO1RcigQKBgQDh8wkmQ9L+PAM71qsm
dw+GJ3ixAmPeB6iY34eRLowQwv+kUS7Swex315d0albwsaaMFrWrsgxt68Z5HVt1
/qKuLnJkwyf0ephYZxOTs3ys/xHcN84nMbf5M9OA2+w8syHfCRguNBehxpZtw9Ep
d5cq+WiBKiqESoqwvH42vqeBiwKBgQDaHHDue+N1lDG3UrX6RPykcBym9vti49Ll
D7o+7bf5dcmlen9uCNHbw0ZBKrJaehF/CZTckoH5CuYbHNMZeqTaPdgPmbAuIdcn
l9ZCb4Z5xNaLHCSRiVfDJazamh9TN3gBSHZv9jmU8bZeYRQ6nFVRGEGRnM9ozBBO
I1Y3EJAtjwKBgFKV1FhKHgqSwNPUSMZMaj4smy6Hoxz6S6NkwFZOXx+ZRns2uRiL
jPTYtiD05UYgiLFXc5uH/ocG0IpgMpfUNH3ZuDIgKrBvRtO5CSzJQ96vdEW7l/w3
bfkF+l51A8nD57NvzYjFvYWB4mXIVuEDNxucAZiEYvnrjPnAS5mS4gK1AoGAeRJO
keNNWOhBTKzp/RmsUC83iGsTEkq6t5IqZWIZvKzomSXNdKwKqf3Ukrn7tQOLkMQl
0Oa2pSKqpqQyfjM5LTglJku+o2z/fKfpNImp0RA1s5SUrADcKaRRNitVdiEVSUkL
DY1VW1ttSyiCTSKYrWJUi1rLOzYDWwx8gCZ+kfsCgYAm6R/IjBfIjQRxBbm1NrLT
GdM68kMslgeOHFgiJgmaZar0iyrZljR7k4eddZc5FNYYun6Y6dAZbYGIJ/rq2jG+
TxduuIyUUR4vIAI25vMC4x6wG1fY3IvEqqODTM4OB/gUc+Nnt/HLiyOwOXQjIUg8
VpqJ1iJM7P6cTqUgI8dXHg==
-----END PRIVATE KEY-----
`,
    publicKeyPem: `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwIIQDGc83n+lyYpnpfTl
ToXlzl0LUOgZb9Sqpfcu2Zm9NP9dRuxgPY+op3w/Pa69BnXJFQuoM9BEy832tkH7
c/3WK1Rr8V+rwPWlTK0dZk20Pnv2oH/EGvqY+sWaz7iCjaKmlLTv77/rdgFOa+HE
15Kl6fycZyKUBUfLBpkLf2XOmZvg98+fiuRt+ru2NAX2YBg9xb7H4/4IkUhUKL9P
UtJEY/ShkFG0y7CihMxmJsTz2SQAITmywUO2jA5j4gl1yUnUoDoQyS9+gAvPVLwE
dJOGgKMu1OhwoirnnmGA/hua3BPIyNSMUCk5RkGedWr7xjsHWD+yr1KRsl1Gf4bL
pQIDAQAB
-----END PUBLIC KEY-----
`,
  },
} as const;
type KeyName = keyof typeof KEYS;

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const MESSAGE = '0190a6f3-0c1d-7a2b-8c3d-4e5f6a7b8c9d';
const DEVICE = '0190a6f2-7b7e-7c4e-9f3a-1c2d3e4f5a6b';

/** docs/api.md walks through this body; it is the first request vector. */
const PUSH_BODY = `{"target":{"device":"${DEVICE}"},"title":"Order shipped","body":"Parcel 7421 is on its way","businessId":"order-7421-shipped"}`;

/** canonicalQuery alone: the raw query as sent, and its canonical form. */
const QUERIES: { query: string; canonical: string; note?: string }[] = [
  { query: '', canonical: '' },
  { query: 'b=2&a=1&c=3', canonical: 'a=1&b=2&c=3', note: 'sorted by name' },
  { query: 'a=2&a=10&a=1', canonical: 'a=1&a=10&a=2', note: 'then by value, as strings: 10 sorts before 2' },
  { query: 'a=1&B=2', canonical: 'B=2&a=1', note: 'byte order: upper case before lower case' },
  { query: 'bA=2&b[]=1', canonical: 'b%5B%5D=1&bA=2', note: 'sorted after encoding: % sorts before every letter and digit' },
  { query: "q=it's (fun)*!", canonical: 'q=it%27s%20%28fun%29%2A%21', note: "! ' ( ) * are encoded although encodeURIComponent leaves them" },
  { query: 'keep=~._-AZaz09', canonical: 'keep=~._-AZaz09', note: 'unreserved characters stay as they are' },
  { query: 'q=a+b', canonical: 'q=a%20b', note: '+ is a space (form encoding)' },
  { query: 'q=a%20b', canonical: 'q=a%20b' },
  { query: 'q=1%2B1', canonical: 'q=1%2B1', note: 'a literal + must be sent as %2B' },
  { query: 'path=%2fa%2fb', canonical: 'path=%2Fa%2Fb', note: 'hex digits upper case' },
  { query: 'name=José', canonical: 'name=Jos%C3%A9', note: 'UTF-8, percent-encoded' },
  { query: 'name=Jos%C3%A9', canonical: 'name=Jos%C3%A9' },
  { query: 'emoji=%F0%9F%8E%89', canonical: 'emoji=%F0%9F%8E%89' },
  { query: 'bad=%FF', canonical: 'bad=%EF%BF%BD', note: 'bytes that are not UTF-8 decode to U+FFFD' },
  { query: 'pct=100%&x=%zz', canonical: 'pct=100%25&x=%25zz', note: 'a % not followed by two hex digits is a literal %' },
  { query: 'eq=a=b', canonical: 'eq=a%3Db', note: 'the name ends at the first =' },
  { query: 'flag', canonical: 'flag=', note: 'a name without = has the empty value' },
  { query: 'a=1&&b=2&', canonical: 'a=1&b=2', note: 'empty pieces are dropped' },
  { query: 'my key=1', canonical: 'my%20key=1' },
  { query: 'since=2023-11-14T00:00:00Z', canonical: 'since=2023-11-14T00%3A00%3A00Z' },
];

interface RequestCase {
  name: string;
  note?: string;
  key: KeyName;
  method: string;
  path: string;
  query: string;
  timestamp: string;
  nonce: string;
  body: string;
  /** Written by hand: METHOD, path, canonical query, timestamp, nonce, hex sha256 of the body. */
  canonical: [string, string, string, string, string, string];
}

const REQUESTS: RequestCase[] = [
  {
    name: 'push-simple-hmac',
    note: 'the worked example of docs/api.md',
    key: 'hmac',
    method: 'POST',
    path: '/v1/push/simple',
    query: '',
    timestamp: '1700000000000',
    nonce: 'Zk3q9TbW2xYv7LmN4pRs8A',
    body: PUSH_BODY,
    canonical: ['POST', '/v1/push/simple', '', '1700000000000', 'Zk3q9TbW2xYv7LmN4pRs8A', '8eb2dfa7c66dfcf23644f50727d5bd0da1123a16fee6c46b1f1966c92ac7a2e5'],
  },
  {
    name: 'get-message-hmac',
    note: 'a GET: no query, no body',
    key: 'hmac',
    method: 'GET',
    path: `/v1/messages/${MESSAGE}`,
    query: '',
    timestamp: '1700000001000',
    nonce: 'Xc2mVn8bQ4rT6yUi0oPa1s',
    body: '',
    canonical: ['GET', `/v1/messages/${MESSAGE}`, '', '1700000001000', 'Xc2mVn8bQ4rT6yUi0oPa1s', EMPTY_SHA256],
  },
  {
    name: 'list-messages-hmac',
    note: 'a query sent unsorted, with characters the canonical form encodes',
    key: 'hmac',
    method: 'GET',
    path: '/v1/messages',
    query: 'mode=simple&limit=20&since=2023-11-14T00:00:00Z',
    timestamp: '1700000002000',
    nonce: 'L9kJ8hG7fD6sA5pO4iU3yT',
    body: '',
    canonical: ['GET', '/v1/messages', 'limit=20&mode=simple&since=2023-11-14T00%3A00%3A00Z', '1700000002000', 'L9kJ8hG7fD6sA5pO4iU3yT', EMPTY_SHA256],
  },
  {
    name: 'query-encoding-hmac',
    note: 'signing only: /v1/messages refuses these parameters (400) after the signature has been checked',
    key: 'hmac',
    method: 'GET',
    path: '/v1/messages',
    query: "q=it's%20(fun)*!&name=Jos%C3%A9&tag=a+b&z=%2a&a=2&a=10&flag&sum=1%2B1&path=%2fx",
    timestamp: '1700000003000',
    nonce: 'qW3eR5tY7uI9oP1aS3dF5g',
    body: '',
    canonical: [
      'GET',
      '/v1/messages',
      'a=10&a=2&flag=&name=Jos%C3%A9&path=%2Fx&q=it%27s%20%28fun%29%2A%21&sum=1%2B1&tag=a%20b&z=%2A',
      '1700000003000',
      'qW3eR5tY7uI9oP1aS3dF5g',
      EMPTY_SHA256,
    ],
  },
  {
    name: 'user-path-hmac',
    note: 'the path is signed as sent, percent-encoding included, never decoded',
    key: 'hmac',
    method: 'GET',
    path: '/v1/users/alice%40example.com',
    query: '',
    timestamp: '1700000004000',
    nonce: 'user-lookup_0123456789',
    body: '',
    canonical: ['GET', '/v1/users/alice%40example.com', '', '1700000004000', 'user-lookup_0123456789', EMPTY_SHA256],
  },
  {
    name: 'broadcast-utf8-hmac',
    note: 'the body hash is over the UTF-8 bytes as sent (137 bytes here), not over the characters',
    key: 'hmac',
    method: 'POST',
    path: '/v1/push/broadcast',
    query: '',
    timestamp: '1700000005000',
    nonce: 'Mn4bV6cX8zL0kJ2hG4fD6s',
    body: '{"condition":{"and":[{"tag":"vip"},{"attribute":"city","equals":"Zürich"}]},"title":"Olá 🎉","body":"Grüße aus Zürich","ttl":3600}',
    canonical: ['POST', '/v1/push/broadcast', '', '1700000005000', 'Mn4bV6cX8zL0kJ2hG4fD6s', 'c0732cd0f523d2895c072f4d5729714287dc5bfda3ac8c41b3b2a22fa7bed6a5'],
  },
  {
    name: 'revoke-empty-body-hmac',
    note: 'a POST without a body hashes the empty string',
    key: 'hmac',
    method: 'POST',
    path: `/v1/messages/${MESSAGE}/revoke`,
    query: '',
    timestamp: '1700000006000',
    nonce: 'r3v0ke-0000000000000001',
    body: '',
    canonical: ['POST', `/v1/messages/${MESSAGE}/revoke`, '', '1700000006000', 'r3v0ke-0000000000000001', EMPTY_SHA256],
  },
  {
    name: 'push-simple-ed25519',
    note: 'the request of push-simple-hmac, signed with an uploaded Ed25519 key',
    key: 'ed25519',
    method: 'POST',
    path: '/v1/push/simple',
    query: '',
    timestamp: '1700000000000',
    nonce: 'Zk3q9TbW2xYv7LmN4pRs8A',
    body: PUSH_BODY,
    canonical: ['POST', '/v1/push/simple', '', '1700000000000', 'Zk3q9TbW2xYv7LmN4pRs8A', '8eb2dfa7c66dfcf23644f50727d5bd0da1123a16fee6c46b1f1966c92ac7a2e5'],
  },
  {
    name: 'put-template-ed25519',
    key: 'ed25519',
    method: 'PUT',
    path: '/v1/templates/order-shipped',
    query: '',
    timestamp: '1700000007000',
    nonce: 'tPl8-Ed25519-nonce_0001',
    body: '{"title":"Order {{order}} shipped","body":"Hi {{name}}, parcel {{order}} is on its way"}',
    canonical: ['PUT', '/v1/templates/order-shipped', '', '1700000007000', 'tPl8-Ed25519-nonce_0001', 'dcf3e1f35ce945fc0f0c4d634ddce8a911ed474be48725f322513b6442745f4c'],
  },
  {
    name: 'delete-key-ed25519',
    key: 'ed25519',
    method: 'DELETE',
    path: '/v1/keys/key_8sVqT2wYz5NbL3pK',
    query: '',
    timestamp: '1700000008000',
    nonce: 'dElEtE_kEy_000000000001',
    body: '',
    canonical: ['DELETE', '/v1/keys/key_8sVqT2wYz5NbL3pK', '', '1700000008000', 'dElEtE_kEy_000000000001', EMPTY_SHA256],
  },
  {
    name: 'push-simple-rsa',
    note: 'the request of push-simple-hmac, signed with an uploaded RSA key (PKCS#1 v1.5 signatures are deterministic)',
    key: 'rsa',
    method: 'POST',
    path: '/v1/push/simple',
    query: '',
    timestamp: '1700000000000',
    nonce: 'Zk3q9TbW2xYv7LmN4pRs8A',
    body: PUSH_BODY,
    canonical: ['POST', '/v1/push/simple', '', '1700000000000', 'Zk3q9TbW2xYv7LmN4pRs8A', '8eb2dfa7c66dfcf23644f50727d5bd0da1123a16fee6c46b1f1966c92ac7a2e5'],
  },
  {
    name: 'list-messages-rsa',
    key: 'rsa',
    method: 'GET',
    path: '/v1/messages',
    query: 'mode=simple&limit=20&since=2023-11-14T00:00:00Z',
    timestamp: '1700000002000',
    nonce: 'L9kJ8hG7fD6sA5pO4iU3yT',
    body: '',
    canonical: ['GET', '/v1/messages', 'limit=20&mode=simple&since=2023-11-14T00%3A00%3A00Z', '1700000002000', 'L9kJ8hG7fD6sA5pO4iU3yT', EMPTY_SHA256],
  },
];

const RECEIPT_BATCH = JSON.stringify({
  app: 'app_Zr4k9QeX2mB7wLpN',
  receipts: [
    {
      id: '0190a6f4-2a3b-7c4d-8e5f-6a7b8c9d0e1f',
      message: MESSAGE,
      device: DEVICE,
      status: 'delivered',
      channel: 'socket',
      at: '2023-11-14T22:13:21.500Z',
    },
    {
      id: '0190a6f4-3b4c-7d5e-9f6a-7b8c9d0e1f2a',
      message: MESSAGE,
      device: DEVICE,
      status: 'opened',
      channel: 'socket',
      at: '2023-11-14T22:13:25.000Z',
    },
  ],
});

const RECEIPT_EXPIRED = JSON.stringify({
  app: 'app_Zr4k9QeX2mB7wLpN',
  receipts: [
    {
      id: '0190a6f5-4c5d-7e6f-8a7b-8c9d0e1f2a3b',
      message: '0190a6f3-1e2f-7b3c-9d4e-5f6a7b8c9d0e',
      device: DEVICE,
      status: 'expired',
      channel: 'socket',
      at: '2023-11-15T22:13:30.000Z',
    },
  ],
});

interface ReceiptCase {
  name: string;
  timestamp: string;
  body: string;
  /** Written by hand: what the HMAC covers. */
  signed: string;
}

const RECEIPTS: ReceiptCase[] = [
  { name: 'receipt-delivered-opened', timestamp: '1700000010000', body: RECEIPT_BATCH, signed: `1700000010000\n${RECEIPT_BATCH}` },
  { name: 'receipt-expired', timestamp: '1700086410000', body: RECEIPT_EXPIRED, signed: `1700086410000\n${RECEIPT_EXPIRED}` },
];

// ---------------------------------------------------------------------------------------------

const problems: string[] = [];
const expect = (what: string, actual: unknown, expected: unknown): void => {
  if (actual !== expected) problems.push(`${what}:\n    code:     ${JSON.stringify(actual)}\n    expected: ${JSON.stringify(expected)}`);
};

function signingKeyOf(name: KeyName): SigningKey {
  const key = KEYS[name];
  return key.kind === 'hmac' ? { kind: 'hmac', secret: key.secret } : { kind: key.kind, privateKey: createPrivateKey(key.privateKeyPem) };
}

function verifyingKeyOf(name: KeyName): VerifyingKey {
  const key = KEYS[name];
  return key.kind === 'hmac' ? { kind: 'hmac', secret: key.secret } : { kind: key.kind, publicKey: createPublicKey(key.publicKeyPem) };
}

/** The documented formulas, with node:crypto alone, over the hand-written canonical string. */
function independentSignature(name: KeyName, canonical: string): string {
  const key = KEYS[name];
  if (key.kind === 'hmac') return createHmac('sha256', key.secret).update(canonical, 'utf8').digest('base64');
  return sign(key.kind === 'rsa' ? 'sha256' : null, Buffer.from(canonical, 'utf8'), createPrivateKey(key.privateKeyPem)).toString('base64');
}

for (const [name, key] of Object.entries(KEYS)) {
  if (key.kind === 'hmac') continue;
  const derived = createPublicKey(key.privateKeyPem).export({ type: 'spki', format: 'pem' }).toString();
  expect(`${name}: public key of the private key`, derived, key.publicKeyPem);
}

for (const q of QUERIES) expect(`canonicalQuery(${JSON.stringify(q.query)})`, canonicalQuery(q.query), q.canonical);

const requests = REQUESTS.map((c) => {
  const parts: SignedParts = { method: c.method, path: c.path, query: c.query, timestamp: c.timestamp, nonce: c.nonce, body: c.body };
  const handWritten = c.canonical.join('\n');
  if (!NONCE_PATTERN.test(c.nonce)) problems.push(`${c.name}: nonce ${c.nonce} does not match ${String(NONCE_PATTERN)}`);
  expect(`${c.name}: canonical query`, canonicalQuery(c.query), c.canonical[2]);
  expect(`${c.name}: body sha256`, createHash('sha256').update(c.body, 'utf8').digest('hex'), c.canonical[5]);
  expect(`${c.name}: canonical string`, canonicalString(parts), handWritten);
  const signature = signRequest(signingKeyOf(c.key), parts);
  expect(`${c.name}: signature`, signature, independentSignature(c.key, handWritten));
  if (!verifyRequest(verifyingKeyOf(c.key), parts, signature)) problems.push(`${c.name}: verifyRequest refuses its own signature`);
  const url = c.query === '' ? c.path : `${c.path}?${c.query}`;
  return {
    name: c.name,
    ...(c.note !== undefined && { note: c.note }),
    key: c.key,
    method: c.method,
    url,
    path: c.path,
    query: c.query,
    timestamp: c.timestamp,
    nonce: c.nonce,
    body: c.body,
    bodyBytes: Buffer.byteLength(c.body, 'utf8'),
    bodySha256: c.canonical[5],
    canonicalQuery: c.canonical[2],
    canonicalString: handWritten,
    signature,
    headers: {
      [SignatureHeader.KEY]: KEYS[c.key].id,
      [SignatureHeader.TIMESTAMP]: c.timestamp,
      [SignatureHeader.NONCE]: c.nonce,
      [SignatureHeader.SIGNATURE]: signature,
      ...(c.body !== '' && { 'content-type': 'application/json' }),
    },
  };
});

const signatureOf = (name: string): string => {
  const found = requests.find((r) => r.name === name);
  if (!found) throw new Error(`no request vector ${name}`);
  return found.signature;
};
const base64ToHex = (s: string) => Buffer.from(s, 'base64').toString('hex');
const base64ToUrl = (s: string) => Buffer.from(s, 'base64').toString('base64url');

/** The right bytes in a spelling other than standard padded base64: refused. */
const refused = [
  { request: 'push-simple-hmac', why: 'padding removed', signature: signatureOf('push-simple-hmac').replace(/=+$/, '') },
  { request: 'push-simple-hmac', why: 'base64url alphabet', signature: base64ToUrl(signatureOf('push-simple-hmac')) },
  { request: 'push-simple-hmac', why: 'hex instead of base64', signature: base64ToHex(signatureOf('push-simple-hmac')) },
  { request: 'push-simple-hmac', why: 'data after the padding', signature: `${signatureOf('push-simple-hmac')}AAAA` },
  { request: 'push-simple-ed25519', why: 'padding removed', signature: signatureOf('push-simple-ed25519').replace(/=+$/, '') },
  { request: 'push-simple-rsa', why: 'base64url alphabet', signature: base64ToUrl(signatureOf('push-simple-rsa')) },
  { request: 'get-message-hmac', why: 'the signature of another request', signature: signatureOf('list-messages-hmac') },
];
for (const r of refused) {
  const c = REQUESTS.find((x) => x.name === r.request) as RequestCase;
  const parts = { method: c.method, path: c.path, query: c.query, timestamp: c.timestamp, nonce: c.nonce, body: c.body };
  if (verifyRequest(verifyingKeyOf(c.key), parts, r.signature)) problems.push(`refused ${r.request} (${r.why}): verifyRequest accepts it`);
}

const receipts = RECEIPTS.map((c) => {
  const secret = KEYS.hmac.secret;
  const signature = receiptSignature(secret, c.timestamp, c.body);
  expect(`${c.name}: signature`, signature, createHmac('sha256', secret).update(c.signed, 'utf8').digest('base64'));
  const at = Number(c.timestamp);
  const checks = [
    { now: at, valid: true },
    { now: at + CLOCK_SKEW_MS, valid: true },
    { now: at + CLOCK_SKEW_MS + 1, valid: false },
    { now: at - CLOCK_SKEW_MS - 1, valid: false },
  ];
  for (const check of checks) {
    expect(`${c.name}: verifyReceipt at ${check.now}`, verifyReceipt(secret, { timestamp: c.timestamp, signature }, c.body, check.now), check.valid);
  }
  const unpadded = signature.replace(/=+$/, '');
  expect(`${c.name}: verifyReceipt without padding`, verifyReceipt(secret, { timestamp: c.timestamp, signature: unpadded }, c.body, at), false);
  return {
    name: c.name,
    key: 'hmac',
    timestamp: c.timestamp,
    body: c.body,
    signedString: c.signed,
    signature,
    headers: {
      'content-type': 'application/json',
      [SignatureHeader.KEY]: KEYS.hmac.id,
      [SignatureHeader.TIMESTAMP]: c.timestamp,
      [SignatureHeader.SIGNATURE]: signature,
    },
    checks,
  };
});

if (problems.length > 0) {
  console.error(`signing-vectors: the code disagrees with the hand-written expectations; nothing written.\n  ${problems.join('\n  ')}`);
  process.exit(1);
}

const vectors = {
  about:
    'Request and receipt signing test vectors for docs/api.md sections 2 and 10, generated by docs/signing-vectors.generate.ts from shared/src/signing.ts. The keys are test keys: never use them.',
  headers: SignatureHeader,
  clockSkewMs: CLOCK_SKEW_MS,
  noncePattern: NONCE_PATTERN.source,
  keys: KEYS,
  queries: QUERIES,
  requests,
  refused,
  receipts,
};

const file = new URL('signing-vectors.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(vectors, null, 2)}\n`);
console.log(`wrote ${file.pathname}: ${QUERIES.length} queries, ${requests.length} requests, ${refused.length} refused signatures, ${receipts.length} receipts`);
