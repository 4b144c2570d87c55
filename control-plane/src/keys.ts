/** Apps and their API keys. HMAC secrets are sealed at rest and shown only when created. */
import { ApiKeyLookup, inTransaction, newPublicId, newSecret, type Db, type MasterKey } from '@mps/shared';

export type { ApiKey } from '@mps/shared';

export interface CreatedApp {
  app: string;
  keyId: string;
  secret: string;
}

/** Creates apps and keys; lookups go through the shared ApiKeyLookup. */
export class KeyStore extends ApiKeyLookup {
  constructor(
    private readonly pool: Db,
    private readonly sealer: MasterKey,
    cacheMs: number,
  ) {
    super(pool, sealer, cacheMs);
  }

  async createApp(name: string): Promise<CreatedApp> {
    const app = newPublicId('app');
    const keyId = newPublicId('key');
    const secret = newSecret();
    await inTransaction(this.pool, async (client) => {
      await client.query('INSERT INTO apps (id, name) VALUES ($1, $2)', [app, name]);
      await client.query(`INSERT INTO app_keys (id, app_id, kind, secret_sealed) VALUES ($1, $2, 'hmac', $3)`, [
        keyId,
        app,
        this.sealer.seal(secret),
      ]);
    });
    return { app, keyId, secret };
  }
}
