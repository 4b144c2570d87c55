import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CredentialStore, Credentials } from './client.js';

/** Keeps a Node device's id and secret in a JSON file (mode 0600). */
export class FileCredentialStore implements CredentialStore {
  constructor(private readonly path: string) {}

  async load(): Promise<Credentials | undefined> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as Credentials;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async save(credentials: Credentials): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await writeFile(this.path, JSON.stringify(credentials), { mode: 0o600 });
  }
}
