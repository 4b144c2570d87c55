/**
 * Test TLS material, made at run time with the `openssl` CLI so no key is ever committed: a
 * throwaway CA, a server certificate for 127.0.0.1 and the vendors' host names (the fakes present
 * it whatever name the client asked for), and a client certificate for APNs certificate auth.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface TestTls {
  /** The CA that signed both certificates: what clients must trust. */
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
}

export const VENDOR_HOSTS = [
  'api.push.apple.com',
  'api.sandbox.push.apple.com',
  'fcm.googleapis.com',
  'oauth2.googleapis.com',
  'oauth-login.cloud.huawei.com',
  'push-api.cloud.huawei.com',
  'api.xmpush.xiaomi.com',
  'feedback.xmpush.xiaomi.com',
] as const;

/** The bundle id in the client certificate's subject, as in an Apple push certificate. */
export const CLIENT_CERT_TOPIC = 'com.example.mps';

// Apple's push client certificates carry these (sandbox, production); @parse/node-apn refuses a
// certificate without the one for its environment.
const APPLE_PUSH_DEVELOPMENT_OID = '1.2.840.113635.100.6.3.1';
const APPLE_PUSH_PRODUCTION_OID = '1.2.840.113635.100.6.3.2';

const run = promisify(execFile);
let cached: Promise<TestTls> | undefined;

/** The same material for the whole process: generating RSA keys takes a moment. */
export function testTls(): Promise<TestTls> {
  cached ??= generate();
  return cached;
}

async function generate(): Promise<TestTls> {
  const dir = await mkdtemp(join(tmpdir(), 'mps-tls-'));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  try {
    await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '7', '-subj', '/CN=mps test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout', at('ca.key'), '-out', at('ca.crt'));

    const sans = ['DNS:localhost', 'IP:127.0.0.1', ...VENDOR_HOSTS.map((host) => `DNS:${host}`)].join(',');
    await Promise.all([
      sign('server', '/CN=localhost', ['extendedKeyUsage=serverAuth', `subjectAltName=${sans}`]),
      sign('client', `/UID=${CLIENT_CERT_TOPIC}/CN=Apple Push Services: ${CLIENT_CERT_TOPIC}/OU=MPSTEST001/O=MPS test/C=US`, [
        'extendedKeyUsage=clientAuth',
        `${APPLE_PUSH_DEVELOPMENT_OID}=ASN1:NULL`,
        `${APPLE_PUSH_PRODUCTION_OID}=ASN1:NULL`,
      ]),
    ]);

    const [ca, cert, key, clientCert, clientKey] = await Promise.all(
      ['ca.crt', 'server.crt', 'server.key', 'client.crt', 'client.key'].map((name) => readFile(at(name), 'utf8')),
    ) as [string, string, string, string, string];
    return { ca, cert, key, clientCert, clientKey };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  async function sign(name: string, subject: string, extensions: string[]): Promise<void> {
    const ext = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', ...extensions];
    await writeFile(at(`${name}.ext`), ext.join('\n') + '\n');
    await openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', subject,
      '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`));
    await openssl('x509', '-req', '-in', at(`${name}.csr`), '-CA', at('ca.crt'), '-CAkey', at('ca.key'),
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '7', '-extfile', at(`${name}.ext`),
      '-out', at(`${name}.crt`));
  }
}
