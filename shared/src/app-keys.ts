/** Looking up an app's API key (HMAC secret unsealed), cached briefly: the control plane verifies
 * request signatures with it and the gateway verifies device tokens signed with it. */
import type { Db } from './db.js';
import type { MasterKey } from './sealed.js';

export interface ApiKey {
  id: string;
  app: string;
  status: 'active' | 'disabled';
  secret: string;
}

export class ApiKeyLookup {
  private readonly cache = new Map<string, { key: ApiKey | undefined; until: number }>();

  constructor(
    private readonly db: Db,
    private readonly masterKey: MasterKey,
    private readonly cacheMs: number,
  ) {}

  async find(keyId: string): Promise<ApiKey | undefined> {
    const hit = this.cache.get(keyId);
    if (hit && hit.until > Date.now()) return hit.key;
    const result = await this.db.query<{ app_id: string; status: ApiKey['status']; secret_sealed: Buffer }>(
      `SELECT app_id, status, secret_sealed FROM app_keys WHERE id = $1 AND kind = 'hmac'`,
      [keyId],
    );
    const row = result.rows[0];
    const key = row && { id: keyId, app: row.app_id, status: row.status, secret: this.masterKey.open(row.secret_sealed) };
    this.cache.set(keyId, { key, until: Date.now() + this.cacheMs });
    return key;
  }
}
