/** Looking up an app's API key (HMAC secret unsealed, public key parsed), cached briefly: the
 * control plane verifies request signatures with it and the gateway verifies device tokens. */
import { createPublicKey } from 'node:crypto';
import type { Db } from './db.js';
import type { MasterKey } from './sealed.js';
import type { VerifyingKey } from './signing.js';

export const KeyKind = ['hmac', 'rsa', 'ed25519'] as const;
export type KeyKind = (typeof KeyKind)[number];

export type ApiKey = VerifyingKey & {
  id: string;
  app: string;
  status: 'active' | 'disabled';
  /** The app's own request rate limit, if it has one. */
  rateLimitPerS: number | null;
};

export class ApiKeyLookup {
  private readonly cache = new Map<string, { key: ApiKey | undefined; until: number }>();

  constructor(
    private readonly db: Db,
    private readonly masterKey: MasterKey,
    private readonly cacheMs: number,
  ) {}

  /** Drops a cached key after it changed (other processes see the change within their cache time). */
  forget(keyId: string): void {
    this.cache.delete(keyId);
  }

  async find(keyId: string): Promise<ApiKey | undefined> {
    const hit = this.cache.get(keyId);
    if (hit && hit.until > Date.now()) return hit.key;
    const result = await this.db.query<{
      app_id: string;
      status: ApiKey['status'];
      kind: KeyKind;
      secret_sealed: Buffer | null;
      public_key: string | null;
      rate_limit_per_s: number | null;
    }>(
      `SELECT k.app_id, k.status, k.kind, k.secret_sealed, k.public_key, a.rate_limit_per_s
       FROM app_keys k JOIN apps a ON a.id = k.app_id WHERE k.id = $1`,
      [keyId],
    );
    const row = result.rows[0];
    const base = row && { id: keyId, app: row.app_id, status: row.status, rateLimitPerS: row.rate_limit_per_s };
    const key: ApiKey | undefined = !row || !base
      ? undefined
      : row.kind === 'hmac'
        ? { ...base, kind: 'hmac', secret: this.masterKey.open(row.secret_sealed as Buffer) }
        : { ...base, kind: row.kind, publicKey: createPublicKey(row.public_key as string) };
    this.cache.set(keyId, { key, until: Date.now() + this.cacheMs });
    return key;
  }
}
