/** Apps and their API keys. HMAC secrets are sealed at rest and shown only when created. */
import { createPublicKey } from 'node:crypto';
import { ApiKeyLookup, inTransaction, newPublicId, newSecret, type Db, type DbClient, type KeyKind, type MasterKey } from '@mps/shared';
import { ApiError } from './errors.js';

/** An app may hold this many active keys at once: enough to rotate without downtime. */
export const MAX_ACTIVE_KEYS = 2;

export interface KeyInfo {
  id: string;
  kind: KeyKind;
  status: 'active' | 'disabled';
  createdAt: string;
}

/** A newly created key; `secret` only for HMAC keys, and only this once. */
export interface NewKey extends KeyInfo {
  secret?: string;
}

/** Accepts RSA keys of at least 2048 bits and Ed25519 keys, as PEM (SPKI); returns the PEM to store. */
function checkedPublicKey(kind: 'rsa' | 'ed25519', pem: string | undefined): string {
  if (pem === undefined) throw new ApiError('INVALID_KEY', `a ${kind} key needs publicKey (PEM)`);
  // A private key would parse too (its public half derived): refuse it, it must never leave its owner.
  if (!/^-----BEGIN PUBLIC KEY-----/m.test(pem)) throw new ApiError('INVALID_KEY', 'publicKey must be a PEM "PUBLIC KEY" (SPKI)');
  let key;
  try {
    key = createPublicKey(pem);
  } catch (cause) {
    throw new ApiError('INVALID_KEY', 'publicKey is not a PEM public key', { cause });
  }
  if (key.asymmetricKeyType !== kind) throw new ApiError('INVALID_KEY', `publicKey is a ${key.asymmetricKeyType} key, not ${kind}`);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (kind === 'rsa' && bits < 2048) throw new ApiError('INVALID_KEY', `RSA keys need at least 2048 bits (this one has ${bits})`);
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

const infoOf = (row: { id: string; kind: KeyKind; status: KeyInfo['status']; created_at: Date }): KeyInfo => ({
  id: row.id,
  kind: row.kind,
  status: row.status,
  createdAt: row.created_at.toISOString(),
});

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
    /** Seals what is kept secret at rest (key secrets here, vendor credentials in ChannelStore). */
    readonly sealer: MasterKey,
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

  async list(app: string): Promise<KeyInfo[]> {
    const rows = await this.pool.query('SELECT id, kind, status, created_at FROM app_keys WHERE app_id = $1 ORDER BY created_at', [app]);
    return rows.rows.map(infoOf);
  }

  async create(app: string, kind: KeyKind, publicKey?: string): Promise<NewKey> {
    const id = newPublicId('key');
    const secret = kind === 'hmac' ? newSecret() : undefined;
    const pem = kind === 'hmac' ? null : checkedPublicKey(kind, publicKey);
    const row = await inTransaction(this.pool, async (client) => {
      await this.lockApp(client, app);
      if ((await this.activeCount(client, app)) >= MAX_ACTIVE_KEYS) {
        throw new ApiError('KEY_LIMIT', `an app has at most ${MAX_ACTIVE_KEYS} active keys: disable one first`);
      }
      const inserted = await client.query(
        `INSERT INTO app_keys (id, app_id, kind, secret_sealed, public_key) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, kind, status, created_at`,
        [id, app, kind, secret === undefined ? null : this.sealer.seal(secret), pem],
      );
      return inserted.rows[0];
    });
    return { ...infoOf(row), ...(secret !== undefined && { secret }) };
  }

  /** Enables or disables a key; the app's last active key cannot be disabled. */
  async setStatus(app: string, keyId: string, status: KeyInfo['status']): Promise<KeyInfo> {
    return inTransaction(this.pool, async (client) => {
      await this.lockApp(client, app);
      const current = await this.keyOf(client, app, keyId);
      if (current.status === status) return infoOf(current);
      const active = await this.activeCount(client, app);
      if (status === 'disabled' && active <= 1) throw new ApiError('LAST_ACTIVE_KEY', 'the last active key of an app cannot be disabled');
      if (status === 'active' && active >= MAX_ACTIVE_KEYS) {
        throw new ApiError('KEY_LIMIT', `an app has at most ${MAX_ACTIVE_KEYS} active keys: disable one first`);
      }
      const updated = await client.query('UPDATE app_keys SET status = $3 WHERE id = $1 AND app_id = $2 RETURNING id, kind, status, created_at', [
        keyId,
        app,
        status,
      ]);
      this.forget(keyId);
      return infoOf(updated.rows[0]);
    });
  }

  async delete(app: string, keyId: string): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await this.lockApp(client, app);
      const current = await this.keyOf(client, app, keyId);
      if (current.status === 'active' && (await this.activeCount(client, app)) <= 1) {
        throw new ApiError('LAST_ACTIVE_KEY', 'the last active key of an app cannot be deleted');
      }
      await client.query('DELETE FROM app_keys WHERE id = $1 AND app_id = $2', [keyId, app]);
    });
    this.forget(keyId);
  }

  /** Key changes of one app are serialized, so two concurrent calls cannot both pass a limit. */
  private async lockApp(client: DbClient, app: string): Promise<void> {
    await client.query('SELECT 1 FROM apps WHERE id = $1 FOR UPDATE', [app]);
  }

  private async activeCount(client: DbClient, app: string): Promise<number> {
    const r = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM app_keys WHERE app_id = $1 AND status = 'active'`, [app]);
    return r.rows[0]?.n ?? 0;
  }

  private async keyOf(client: DbClient, app: string, keyId: string) {
    const r = await client.query('SELECT id, kind, status, created_at FROM app_keys WHERE id = $1 AND app_id = $2', [keyId, app]);
    const row = r.rows[0];
    if (!row) throw new ApiError('KEY_NOT_FOUND', `no key ${keyId} in this app`);
    return row;
  }
}
