/**
 * Vendor channels: each app's credentials for APNs, FCM, Huawei Push Kit and Xiaomi MiPush, the
 * per-message vendor fields, and the job a push leaves on the vendor work queue. The control plane
 * validates and seals credentials; the senders open them.
 */
import { createPrivateKey, createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import type { Db } from './db.js';
import { Vendor } from './protocol/index.js';
import { oneOf } from './schema.js';
import type { MasterKey } from './sealed.js';

const Pem = Type.String({ minLength: 1, maxLength: 16384 });

export const ApnsTokenConfig = Type.Object(
  {
    auth: Type.Literal('token'),
    key: Type.String({ minLength: 1, maxLength: 4096, description: 'the .p8 signing key (PKCS#8 PEM)' }),
    keyId: Type.String({ pattern: '^[A-Z0-9]{10}$' }),
    teamId: Type.String({ pattern: '^[A-Z0-9]{10}$' }),
    bundleId: Type.String({ minLength: 1, maxLength: 255 }),
    production: Type.Boolean(),
  },
  { additionalProperties: false },
);

export const ApnsCertificateConfig = Type.Object(
  {
    auth: Type.Literal('certificate'),
    cert: Type.Optional(Pem),
    key: Type.Optional(Pem),
    pfx: Type.Optional(Type.String({ minLength: 1, maxLength: 32768, description: 'a .p12 file, base64' })),
    passphrase: Type.Optional(Type.String({ maxLength: 1024 })),
    bundleId: Type.String({ minLength: 1, maxLength: 255 }),
    production: Type.Boolean(),
  },
  { additionalProperties: false, description: 'cert and key (PEM), or pfx' },
);

export const ApnsConfig = Type.Union([ApnsTokenConfig, ApnsCertificateConfig]);
export type ApnsConfig = Static<typeof ApnsConfig>;

export const FcmConfig = Type.Object(
  {
    serviceAccount: Type.Object(
      {
        type: Type.Literal('service_account'),
        project_id: Type.String({ minLength: 1, maxLength: 128 }),
        private_key_id: Type.String({ minLength: 1, maxLength: 128 }),
        private_key: Pem,
        client_email: Type.String({ minLength: 3, maxLength: 320 }),
      },
      { additionalProperties: true, description: 'the service-account JSON from the Firebase console' },
    ),
  },
  { additionalProperties: false },
);
export type FcmConfig = Static<typeof FcmConfig>;

export const HuaweiConfig = Type.Object(
  {
    appId: Type.String({ pattern: '^[0-9]{1,32}$' }),
    clientId: Type.Optional(Type.String({ pattern: '^[0-9]{1,32}$', description: 'OAuth client id; the app id when omitted' })),
    clientSecret: Type.String({ minLength: 8, maxLength: 256, description: 'OAuth client secret (the app secret)' }),
  },
  { additionalProperties: false },
);
export type HuaweiConfig = Static<typeof HuaweiConfig>;

export const XiaomiConfig = Type.Object(
  {
    appSecret: Type.String({ minLength: 8, maxLength: 256 }),
    packageName: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_]*(\\.[A-Za-z][A-Za-z0-9_]*)+$', maxLength: 255 }),
  },
  { additionalProperties: false },
);
export type XiaomiConfig = Static<typeof XiaomiConfig>;

export interface ChannelConfigs {
  apns: ApnsConfig;
  fcm: FcmConfig;
  huawei: HuaweiConfig;
  xiaomi: XiaomiConfig;
}
export type ChannelConfig = ChannelConfigs[Vendor];

export const ChannelConfigSchemas = { apns: ApnsConfig, fcm: FcmConfig, huawei: HuaweiConfig, xiaomi: XiaomiConfig } as const;

/** A field-level problem with credentials: the API answers 400 naming the field. */
export class ChannelConfigError extends Error {
  override name = 'ChannelConfigError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** What may be shown of a secret: its length and a fingerprint, never any of its characters. */
export function secretHint(secret: string): string {
  return `sha256:${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`;
}

function privateKey(field: string, pem: string, passphrase?: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, ...(passphrase !== undefined && { passphrase }) });
  } catch {
    throw new ChannelConfigError(field, 'is not a readable private key (PEM)');
  }
}

function checkApns(config: ApnsConfig): Record<string, unknown> {
  const common = { auth: config.auth, bundleId: config.bundleId, production: config.production };
  if (config.auth === 'token') {
    const key = privateKey('key', config.key);
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new ChannelConfigError('key', 'must be the P-256 (ES256) .p8 key from Apple');
    }
    return { ...common, keyId: config.keyId, teamId: config.teamId, key: secretHint(config.key) };
  }
  if (config.pfx !== undefined) {
    if (config.cert !== undefined || config.key !== undefined) throw new ChannelConfigError('pfx', 'give pfx, or cert and key, not both');
    try {
      createSecureContext({ pfx: Buffer.from(config.pfx, 'base64'), ...(config.passphrase !== undefined && { passphrase: config.passphrase }) });
    } catch {
      throw new ChannelConfigError('pfx', 'is not a readable PKCS#12 file with this passphrase');
    }
    return { ...common, certificate: secretHint(config.pfx) };
  }
  if (config.cert === undefined || config.key === undefined) throw new ChannelConfigError('cert', 'certificate auth needs cert and key, or pfx');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(config.cert);
  } catch {
    throw new ChannelConfigError('cert', 'is not a readable X.509 certificate (PEM)');
  }
  if (!cert.checkPrivateKey(privateKey('key', config.key, config.passphrase))) {
    throw new ChannelConfigError('key', 'does not belong to the certificate');
  }
  if (Date.parse(cert.validTo) < Date.now()) throw new ChannelConfigError('cert', `expired on ${cert.validTo}`);
  return { ...common, subject: cert.subject, validTo: new Date(cert.validTo).toISOString(), fingerprint: cert.fingerprint256 };
}

function checkFcm(config: FcmConfig): Record<string, unknown> {
  const sa = config.serviceAccount;
  const key = privateKey('serviceAccount.private_key', sa.private_key);
  if (key.asymmetricKeyType !== 'rsa') throw new ChannelConfigError('serviceAccount.private_key', 'must be an RSA key');
  if (!sa.client_email.includes('@')) throw new ChannelConfigError('serviceAccount.client_email', 'is not an e-mail address');
  return { projectId: sa.project_id, clientEmail: sa.client_email, privateKeyId: sa.private_key_id };
}

const validators = {
  apns: Compile(ApnsConfig),
  fcm: Compile(FcmConfig),
  huawei: Compile(HuaweiConfig),
  xiaomi: Compile(XiaomiConfig),
};

/**
 * Checks credentials the way the vendor will read them (keys parse, certificate and key match,
 * nothing expired) and returns the summary the API may show. Throws ChannelConfigError.
 */
export function checkChannelConfig(vendor: Vendor, config: unknown): Record<string, unknown> {
  const validator = validators[vendor];
  if (!validator.Check(config)) {
    const first = [...validator.Errors(config)][0];
    const field = first?.instancePath.replace(/^\//, '').replaceAll('/', '.') || 'body';
    throw new ChannelConfigError(field, first?.message ?? 'does not match the schema');
  }
  switch (vendor) {
    case 'apns':
      return checkApns(config as ApnsConfig);
    case 'fcm':
      return checkFcm(config as FcmConfig);
    case 'huawei': {
      const c = config as HuaweiConfig;
      return { appId: c.appId, clientId: c.clientId ?? c.appId, clientSecret: secretHint(c.clientSecret) };
    }
    case 'xiaomi': {
      const c = config as XiaomiConfig;
      return { packageName: c.packageName, appSecret: secretHint(c.appSecret) };
    }
  }
}

export interface ChannelSummary {
  vendor: Vendor;
  updatedAt: string;
  summary: Record<string, unknown>;
}

/** Sealed credentials in Postgres; the only code that opens them. */
export class ChannelStore {
  constructor(
    private readonly db: Db,
    private readonly masterKey: MasterKey,
  ) {}

  async save(app: string, vendor: Vendor, config: unknown): Promise<ChannelSummary> {
    const summary = checkChannelConfig(vendor, config);
    const r = await this.db.query<{ updated_at: Date }>(
      `INSERT INTO app_channels (app_id, vendor, config_sealed, summary) VALUES ($1, $2, $3, $4)
       ON CONFLICT (app_id, vendor) DO UPDATE SET config_sealed = EXCLUDED.config_sealed, summary = EXCLUDED.summary, updated_at = now()
       RETURNING updated_at`,
      [app, vendor, this.masterKey.seal(JSON.stringify(config)), summary],
    );
    return { vendor, updatedAt: (r.rows[0] as { updated_at: Date }).updated_at.toISOString(), summary };
  }

  async list(app: string): Promise<ChannelSummary[]> {
    const r = await this.db.query<{ vendor: Vendor; updated_at: Date; summary: Record<string, unknown> }>(
      'SELECT vendor, updated_at, summary FROM app_channels WHERE app_id = $1 ORDER BY vendor',
      [app],
    );
    return r.rows.map((row) => ({ vendor: row.vendor, updatedAt: row.updated_at.toISOString(), summary: row.summary }));
  }

  async remove(app: string, vendor: Vendor): Promise<boolean> {
    const r = await this.db.query('DELETE FROM app_channels WHERE app_id = $1 AND vendor = $2', [app, vendor]);
    return r.rowCount === 1;
  }

  /** The credentials and when they last changed (senders rebuild their clients on change). */
  async open<V extends Vendor>(app: string, vendor: V): Promise<{ config: ChannelConfigs[V]; version: string } | undefined> {
    const r = await this.db.query<{ config_sealed: Buffer; updated_at: Date }>(
      'SELECT config_sealed, updated_at FROM app_channels WHERE app_id = $1 AND vendor = $2',
      [app, vendor],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    return { config: JSON.parse(this.masterKey.open(row.config_sealed)) as ChannelConfigs[V], version: row.updated_at.toISOString() };
  }
}

export const ChannelPolicy = ['auto', 'socket', 'vendor'] as const;
export type ChannelPolicy = (typeof ChannelPolicy)[number];

/** Per-message vendor fields; each sender maps them to its vendor's own form. */
export const VendorOptions = Type.Object(
  {
    apns: Type.Optional(
      Type.Object(
        {
          priority: Type.Optional(Type.Union([Type.Literal(5), Type.Literal(10)])),
          collapseId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          threadId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          sound: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          badge: Type.Optional(Type.Integer({ minimum: 0, maximum: 99999 })),
          mutableContent: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    android: Type.Optional(
      Type.Object(
        {
          channelId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'notification channel (Xiaomi: the approved private channel)' })),
          priority: Type.Optional(oneOf(['normal', 'high'] as const)),
          collapseKey: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          /** Huawei's message category: service classes need Huawei's approval, others count as marketing. */
          category: Type.Optional(
            oneOf(['IM', 'VOIP', 'SUBSCRIPTION', 'TRAVEL', 'HEALTH', 'WORK', 'ACCOUNT', 'EXPRESS', 'FINANCE', 'DEVICE_REMINDER', 'MAIL', 'MARKETING'] as const),
          ),
          importance: Type.Optional(oneOf(['low', 'normal', 'high'] as const)),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type VendorOptions = Static<typeof VendorOptions>;

/**
 * A push's work for the vendor senders: the message and whom it was for, expanded by the sender. A
 * broadcast job covers the matching devices after `after` (by id), one page at a time: the sender
 * queues the next page's job (`page` counts from 0) before acking its own.
 */
export type VendorJob = { app: string; message: string } & (
  | { device: string }
  | { user: string }
  | { broadcast: { after: string | null; page?: number } }
);

/** The JetStream dedup id of a job: the same job published twice within the window is kept once. */
export function vendorJobId(job: VendorJob): string {
  if ('device' in job) return `${job.message}.d.${job.device}`;
  if ('user' in job) return `${job.message}.u.${job.user}`;
  return `${job.message}.b.${job.broadcast.after ?? 'start'}`;
}

export function encodeVendorJob(job: VendorJob): Uint8Array {
  return Buffer.from(JSON.stringify(job));
}

export function decodeVendorJob(bytes: Uint8Array): VendorJob | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof value.app !== 'string' || typeof value.message !== 'string') return undefined;
  const kinds = [typeof value.device === 'string', typeof value.user === 'string', typeof value.broadcast === 'object' && value.broadcast !== null];
  if (kinds.filter(Boolean).length !== 1) return undefined;
  if (kinds[2]) {
    const { after, page } = value.broadcast as { after?: unknown; page?: unknown };
    if (after !== null && typeof after !== 'string') return undefined;
    if (page !== undefined && !(Number.isInteger(page) && (page as number) >= 0)) return undefined;
  }
  return value as unknown as VendorJob;
}
