/**
 * Creates the demo app and its key on first run and keeps them in DATA_DIR/demo.json (git-ignored).
 * Prints the credentials; run by `make run` before the services start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDb, migrate, resolveMasterKey, runMain } from '@mps/shared';
import { loadControlPlaneConfig } from './config.js';
import { KeyStore } from './keys.js';

await runMain(async () => {
  const config = loadControlPlaneConfig();
  const file = join(config.DATA_DIR, 'demo.json');
  const db = createDb(config.DATABASE_URL, 2);
  try {
    await migrate(db);
    const known = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { app: string }) : undefined;
    const stillThere = known && (await db.query('SELECT 1 FROM apps WHERE id = $1', [known.app])).rowCount === 1;
    if (!stillThere) {
      const keys = new KeyStore(db, await resolveMasterKey(config), 0);
      const created = await keys.createApp('demo');
      const host = process.env.PUBLIC_HOST ?? '127.0.0.1';
      const demo = {
        ...created,
        apiUrl: `http://${host}:${config.API_PORT}`,
        gatewayUrl: `ws://${host}:${process.env.GATEWAY_PORT ?? 8081}/v1/device`,
      };
      await mkdir(config.DATA_DIR, { recursive: true });
      await writeFile(file, `${JSON.stringify(demo, null, 2)}\n`, { mode: 0o600 });
      console.log(`created the demo app ${demo.app} with key ${demo.keyId}; credentials in ${file}`);
    } else {
      console.log(`demo app ${known.app}; credentials in ${file}`);
    }
  } finally {
    await db.end();
  }
});
