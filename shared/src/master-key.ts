import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MasterKey } from './sealed.js';

/** MASTER_KEY when given; otherwise DATA_DIR/master.key, created (mode 0600) on first start. */
export async function resolveMasterKey(config: { MASTER_KEY: string; DATA_DIR: string }): Promise<MasterKey> {
  if (config.MASTER_KEY !== '') return MasterKey.fromBase64(config.MASTER_KEY);
  const file = join(config.DATA_DIR, 'master.key');
  try {
    return MasterKey.fromBase64((await readFile(file, 'utf8')).trim());
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(config.DATA_DIR, { recursive: true });
  const key = MasterKey.generate();
  await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  return MasterKey.fromBase64((await readFile(file, 'utf8')).trim());
}
