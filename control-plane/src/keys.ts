/** Apps and their API keys. HMAC secrets are sealed at rest and shown only when created. */
import { inTransaction, newPublicId, newSecret, type Db, type MasterKey } from '@mps/shared';

export interface ApiKey {
  id: string;
  app: string;
  status: 'active' | 'disabled';
  secret: string;
}

export interface CreatedApp {
  app: string;
  keyId: string;
  secret: string;
}

export class KeyStore {
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

  async createApp(name: string): Promise<CreatedApp> {
    const app = newPublicId('app');
    const keyId = newPublicId('key');
    const secret = newSecret();
    await inTransaction(this.db, async (client) => {
      await client.query('INSERT INTO apps (id, name) VALUES ($1, $2)', [app, name]);
      await client.query(`INSERT INTO app_keys (id, app_id, kind, secret_sealed) VALUES ($1, $2, 'hmac', $3)`, [
        keyId,
        app,
        this.masterKey.seal(secret),
      ]);
    });
    return { app, keyId, secret };
  }
}
